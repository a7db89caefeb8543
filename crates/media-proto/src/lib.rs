//! The contract between `hearth` and a `hearth-media` worker process. The worker reads one
//! [`TaskSpec`] as the first line of its standard input, then [`Command`]s, one JSON object a
//! line; it writes [`Event`]s to standard output, one a line. It also holds the pure layout math
//! of mixed pictures, so that it is tested without GStreamer.

pub mod layout;
mod spec;

pub use spec::*;
