//! The only module with unsafe code: perf_event_open, its ioctls, the mmap'd
//! ring buffers, and the few raw syscalls nix does not wrap.
#![allow(unsafe_code)]

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("{0}")]
    Other(String),
}
