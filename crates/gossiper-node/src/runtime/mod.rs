//! Runtimes: the loops that feed a [`Node`](crate::Node) time and datagrams and carry out what it
//! asks for. The engine stays the same under each; only how time passes and bytes travel differs.

pub mod threaded;
