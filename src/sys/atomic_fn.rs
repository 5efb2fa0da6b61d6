//! A function pointer in one atomic word: set and read without a lock or an allocation, so
//! that a signal handler may read it (the library's message sink, see `report`).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A `fn(A, &str)`, or none, in one atomic word.
pub(crate) struct AtomicFn<A> {
    word: AtomicPtr<()>,
    _type: PhantomData<fn(A, &str)>,
}

impl<A> AtomicFn<A> {
    /// No function.
    pub(crate) const fn none() -> Self {
        AtomicFn {
            word: AtomicPtr::new(std::ptr::null_mut()),
            _type: PhantomData,
        }
    }

    /// Hold `f` (or none) from now on; a reader that loaded the previous function may still
    /// be calling it.
    pub(crate) fn set(&self, f: Option<fn(A, &str)>) {
        let word = f.map_or(std::ptr::null_mut(), |f| f as *mut ());
        self.word.store(word, Ordering::Release);
    }

    /// The function held, if any: one atomic load.
    pub(crate) fn get(&self) -> Option<fn(A, &str)> {
        let word = self.word.load(Ordering::Acquire);
        if word.is_null() {
            return None;
        }
        // SAFETY: every non-NULL word was stored by `set` from a `fn(A, &str)`, this very type
        // (function pointers are never NULL, and a function lives as long as the program).
        Some(unsafe { std::mem::transmute::<*mut (), fn(A, &str)>(word) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(n: u32, _: &str) {
        assert_eq!(n * 2, 84);
    }

    #[test]
    fn holds_the_function_it_was_given_and_none_again() {
        static CELL: AtomicFn<u32> = AtomicFn::none();
        assert!(CELL.get().is_none());
        CELL.set(Some(double));
        (CELL.get().expect("set"))(42, "");
        CELL.set(None);
        assert!(CELL.get().is_none());
    }
}
