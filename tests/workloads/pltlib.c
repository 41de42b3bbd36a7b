/* Shared library for pltwork: a tiny function called through the PLT. */
unsigned long plt_step(unsigned long x) { return x * 6364136223846793005UL + 1442695040888963407UL; }
