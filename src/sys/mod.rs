//! Operating-system shims: the few libc calls without a safe wrapper in std or nix, each
//! wrapped once behind a safe function. Nothing here imports the rest of the crate.
#![allow(unsafe_code)]

pub(crate) mod atomic_fn;
pub(crate) mod flock;
pub(crate) mod fork;
pub(crate) mod mutex;
pub(crate) mod shared_words;
pub(crate) mod signals;
