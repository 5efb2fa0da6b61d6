//! The line format, pure: values to the bytes of one line ([`encode`]), a line split into its
//! fields ([`fields`]) and each field's escapes back to its bytes ([`decode`]). No I/O; both
//! directions live here and nowhere else.

pub mod decode;
pub mod encode;
pub mod fields;
pub mod value;
