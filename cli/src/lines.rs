//! A file's content as lines, in bounded memory: lines are handed out of the read buffer
//! where they lie whole, and only a line that straddles two reads is copied.

use crate::content::{Content, MAX_LINE, Stop};
use crate::exit::FileError;

/// One line of a file.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The line without its `\n`.
    pub bytes: &'a [u8],
    /// 1 for the first line of the file.
    pub number: u64,
    /// `false` for a last line without `\n` (torn).
    pub terminated: bool,
}

fn newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Call `each` with every line of `content`, in order, the torn last line included.
pub fn for_each_line<E>(
    content: &mut Content<'_>,
    mut each: impl FnMut(Line<'_>) -> Result<(), E>,
) -> Result<(), Stop<E>> {
    let path = content.path();
    let mut carry: Vec<u8> = Vec::new();
    let mut number = 0;
    let hold = |carry: &mut Vec<u8>, more: &[u8], number: u64| {
        if carry.len() + more.len() > MAX_LINE {
            return Err(Stop::Read(FileError::Bad {
                path: path.to_owned(),
                what: format!(
                    "line {} is longer than 16 MiB: not a flatstore log",
                    number + 1
                ),
            }));
        }
        carry.extend_from_slice(more);
        Ok(())
    };
    let read = content.for_each_chunk(|chunk| {
        let mut rest = chunk;
        if !carry.is_empty() {
            let Some(end) = newline(rest) else {
                return hold(&mut carry, rest, number);
            };
            hold(&mut carry, &rest[..end], number)?;
            number += 1;
            each(Line {
                bytes: &carry,
                number,
                terminated: true,
            })
            .map_err(Stop::Sink)?;
            carry.clear();
            rest = &rest[end + 1..];
        }
        while let Some(end) = newline(rest) {
            number += 1;
            each(Line {
                bytes: &rest[..end],
                number,
                terminated: true,
            })
            .map_err(Stop::Sink)?;
            rest = &rest[end + 1..];
        }
        hold(&mut carry, rest, number)
    });
    match read {
        Ok(()) => {}
        Err(Stop::Read(e)) => return Err(Stop::Read(e)),
        // The chunk callback's own stops: a line too long, or `each` failed.
        Err(Stop::Sink(stop)) => return Err(stop),
    }
    if !carry.is_empty() {
        each(Line {
            bytes: &carry,
            number: number + 1,
            terminated: false,
        })
        .map_err(Stop::Sink)?;
    }
    Ok(())
}
