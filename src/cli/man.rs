//! Man pages generated from the clap definitions: `rprof.1` and one page
//! per subcommand (`rprof-record.1`, ...). A test keeps `man/` in sync.

use clap::CommandFactory;

use super::Cli;

/// (file name, roff text) for every page.
pub fn render_all() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let root = Cli::command();
    let mut pages = Vec::new();
    let mut buffer = Vec::new();
    clap_mangen::Man::new(root.clone()).render(&mut buffer)?;
    pages.push(("rprof.1".to_string(), buffer));
    for sub in root.get_subcommands() {
        let name = format!("rprof-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        let mut buffer = Vec::new();
        clap_mangen::Man::new(sub).render(&mut buffer)?;
        pages.push((format!("{name}.1"), buffer));
    }
    Ok(pages)
}
