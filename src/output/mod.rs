//! Outputs: every format is one [`Output`] in a file of its own.

pub mod folded;
pub mod offcpu;
pub mod pprof;
pub mod script;
pub mod svg;
pub mod text;
pub mod top;
pub mod tree;

use std::io::{self, Write};

use crate::aggregate::Profile;

pub use folded::Folded;
pub use svg::FlameGraphSvg;
pub use text::Fit;
pub use top::{SortKey, Top, TopOptions};
pub use tree::{TreeOptions, TreeOrder};

/// Writes a profile in one format.
pub trait Output {
    fn write(&self, profile: &Profile, out: &mut dyn Write) -> io::Result<()>;
}
