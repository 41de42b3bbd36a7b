//! Rust and C++ symbol demangling.

use std::borrow::Cow;

/// Demangles a Rust (legacy or v0) or Itanium C++ name; anything else (C
/// names, or names a demangler rejects) comes back unchanged.
pub fn demangle(name: &str) -> Cow<'_, str> {
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        // The alternate form drops the `::h0123...` hash.
        return Cow::Owned(format!("{rust:#}"));
    }
    if let Some(cpp) = demangle_cpp(name) {
        return Cow::Owned(cpp);
    }
    Cow::Borrowed(name)
}

fn demangle_cpp(name: &str) -> Option<String> {
    // Only Itanium-mangled names: a plain C name like `main` or `Z` must not
    // be read as a C++ type encoding.
    if !name.starts_with("_Z") {
        return None;
    }
    let symbol = cpp_demangle::Symbol::new(name.as_bytes()).ok()?;
    let options = cpp_demangle::DemangleOptions::new().no_return_type();
    symbol.demangle_with_options(&options).ok()
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn rust_legacy_drops_hash() {
        let name = "_ZN4core3ptr13drop_in_place17h8b1b2a3c4d5e6f70E";
        assert_eq!(demangle(name), "core::ptr::drop_in_place");
    }

    #[test]
    fn rust_v0() {
        assert_eq!(demangle("_RNvCs1234_5crate4main"), "crate::main");
    }

    #[test]
    fn cpp_names() {
        assert_eq!(demangle("_Z3addii"), "add(int, int)");
        assert_eq!(demangle("_ZN2ns5Klass6methodEv"), "ns::Klass::method()");
    }

    #[test]
    fn c_names_unchanged() {
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_Zfoo_not_mangled"), "_Zfoo_not_mangled");
    }
}
