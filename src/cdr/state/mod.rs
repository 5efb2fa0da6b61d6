//! The state carried from one accounting run to the next: the pairer's open calls, its
//! remembered ended calls and its newest time, plus the caller's list of consumed files, as
//! versioned, line-based text.
//!
//! ```text
//! flatstore-cdr-state 1
//! newest 2026-11-23T10:00:05.120Z
//! output 2049 1311001 53184
//! file 6c62272e07bb014262b821756295c58d 4096 123456
//! invite <callid> <from_tag> <to_tag> <time> <sip_code> <sip_reason> <extra>...
//! bye <callid> <from_tag> <to_tag> <time> <extra>...
//! ended <end, whole epoch seconds> <hash of the call>
//! end
//! ```
//!
//! `newest -` when no record was seen. The optional `output` line is the caller's mark of the
//! output the state was committed with (device, inode, length in bytes). A value is written with `%XX` for each byte that is a
//! space or control character, not ASCII, or `%`; an empty value is written `-` (and a value
//! that is just `-` as `%2D`). Times are ISO-8601 UTC with their own fraction digits. `file`
//! lines keep the caller's order; calls are in a fixed order, so saving a restored state gives
//! the same bytes. The final `end` line shows the file was not cut short.

use std::fmt::Write as _;

use super::hash::ContentId;
use super::pairing::{CarriedEnd, CarriedSide, Pairer, PairingOptions};
use super::time::Timestamp;

/// The first line of a state, naming its format and version.
pub const FORMAT_LINE: &str = "flatstore-cdr-state 1";
const FORMAT_NAME: &str = "flatstore-cdr-state ";

/// A file (or part of one) the caller has consumed; carried opaquely, never interpreted here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConsumedFile {
    /// The hash of the file's first `hashed_bytes` bytes, to know it again.
    pub content_id: ContentId,
    /// How many bytes from the start of the file `content_id` covers.
    pub hashed_bytes: u64,
    /// How many bytes from the start of the file have been read into the pairer.
    pub consumed_bytes: u64,
}

/// The output file a state was committed together with: which file (device and inode) and how
/// many of its bytes the committed runs wrote; carried opaquely, never interpreted here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputMark {
    /// The file's device number.
    pub device: u64,
    /// The file's inode number.
    pub inode: u64,
    /// Its length when the state was committed.
    pub length: u64,
}

/// What [`restore`] gives back.
#[derive(Debug)]
pub struct Restored {
    /// The pairer, as it was when saved (its counts start again from zero).
    pub pairer: Pairer,
    /// The consumed files, in the order saved.
    pub files: Vec<ConsumedFile>,
    /// The output mark, when the state was saved with one.
    pub output: Option<OutputMark>,
}

/// Why a state could not be restored. Nothing is restored from a state with any error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The bytes are not a CDR state at all.
    #[error("not a flatstore CDR state (it does not begin with \"{FORMAT_LINE}\")")]
    Foreign,
    /// A CDR state of a format version this code does not read.
    #[error("CDR state format version \"{found}\" is not supported (only 1 is)")]
    Version {
        /// The version found.
        found: String,
    },
    /// The state has no `end` line: it was cut short.
    #[error("the CDR state is cut short (it has no \"end\" line)")]
    Truncated,
    /// Two entries give the same side of one call.
    #[error(
        "the CDR state has two INVITE entries or two BYE entries for call \"{}\"",
        .callid.escape_ascii()
    )]
    DoubleSide {
        /// The call's Call-ID.
        callid: Vec<u8>,
    },
    /// A line is wrong.
    #[error("CDR state line {line}: {problem}")]
    Corrupt {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// The state of `pairer` and the caller's consumed `files`, as bytes for [`restore`].
pub fn save(pairer: &Pairer, files: &[ConsumedFile]) -> Vec<u8> {
    save_marked(pairer, files, None)
}

/// [`save`], with the mark of the output the state is committed together with.
pub fn save_marked(pairer: &Pairer, files: &[ConsumedFile], output: Option<OutputMark>) -> Vec<u8> {
    let mut text = format!("{FORMAT_LINE}\nnewest ");
    match pairer.newest() {
        Some(newest) => push_time(&mut text, &newest),
        None => text.push('-'),
    }
    text.push('\n');
    if let Some(mark) = output {
        let _ = writeln!(
            text,
            "output {} {} {}",
            mark.device, mark.inode, mark.length
        );
    }
    for file in files {
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "file {} {} {}",
            file.content_id, file.hashed_bytes, file.consumed_bytes
        );
    }
    for side in pairer.carried_sides() {
        text.push_str(if side.is_invite { "invite" } else { "bye" });
        for value in [&side.callid, &side.from_tag, &side.to_tag] {
            push_value(&mut text, value);
        }
        text.push(' ');
        push_time(&mut text, &side.time);
        if side.is_invite {
            push_value(&mut text, &side.sip_code);
            push_value(&mut text, &side.sip_reason);
        }
        for extra in &side.extras {
            push_value(&mut text, extra);
        }
        text.push('\n');
    }
    for end in pairer.carried_ends() {
        let _ = writeln!(text, "ended {} {}", end.end_seconds, end.call);
    }
    text.push_str("end\n");
    text.into_bytes()
}

/// The pairer (with `options`) and consumed files that [`save`] wrote into `bytes`.
pub fn restore(bytes: &[u8], options: PairingOptions) -> Result<Restored, StateError> {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut lines = text.split(|&byte| byte == b'\n').zip(1..);
    match lines.next() {
        Some((first, _)) if first == FORMAT_LINE.as_bytes() => {}
        Some((first, _)) if first.starts_with(FORMAT_NAME.as_bytes()) => {
            return Err(StateError::Version {
                found: String::from_utf8_lossy(&first[FORMAT_NAME.len()..]).into_owned(),
            });
        }
        _ => return Err(StateError::Foreign),
    }
    let newest = match lines.next() {
        Some((b"newest -", _)) => None,
        Some((line, number)) => match line.strip_prefix(b"newest ") {
            Some(time) => Some(read_time(time).map_err(|problem| corrupt(number, problem))?),
            None => return Err(corrupt(number, "the second line must be \"newest <time>\"")),
        },
        None => return Err(StateError::Truncated),
    };
    let mut files = Vec::new();
    let mut output = None;
    let mut sides = Vec::new();
    let mut ends = Vec::new();
    loop {
        let Some((line, number)) = lines.next() else {
            return Err(StateError::Truncated);
        };
        if line == b"end" {
            if let Some((_, number)) = lines.find(|(rest, _)| !rest.is_empty()) {
                return Err(corrupt(number, "nothing may follow the \"end\" line"));
            }
            break;
        }
        let mut words = line.split(|&byte| byte == b' ');
        let entry = match words.next() {
            Some(b"file") => read_file(&mut words).map(|file| files.push(file)),
            Some(b"output") if output.is_none() => {
                read_output(&mut words).map(|mark| output = Some(mark))
            }
            Some(b"invite") => read_side(&mut words, true).map(|side| sides.push(side)),
            Some(b"bye") => read_side(&mut words, false).map(|side| sides.push(side)),
            Some(b"ended") => read_end(&mut words).map(|end| ends.push(end)),
            _ => Err("unknown entry (expected output once, file, invite, bye, ended or end)"),
        };
        entry.map_err(|problem| corrupt(number, problem))?;
    }
    let pairer = Pairer::restored(options, newest, sides, ends)
        .map_err(|callid| StateError::DoubleSide { callid })?;
    Ok(Restored {
        pairer,
        files,
        output,
    })
}

fn read_output(words: &mut Words<'_>) -> Result<OutputMark, &'static str> {
    let mut number = || {
        words
            .next()
            .and_then(read_unsigned)
            .ok_or("the output's device, inode and length must be decimal numbers")
    };
    let (device, inode, length) = (number()?, number()?, number()?);
    no_more(words)?;
    Ok(OutputMark {
        device,
        inode,
        length,
    })
}

fn corrupt(line: usize, problem: &'static str) -> StateError {
    StateError::Corrupt { line, problem }
}

type Words<'a> = dyn Iterator<Item = &'a [u8]> + 'a;

fn read_file(words: &mut Words<'_>) -> Result<ConsumedFile, &'static str> {
    let content_id = words
        .next()
        .and_then(ContentId::from_hex)
        .ok_or("a file's content id must be 32 hex digits")?;
    let mut count = || {
        words
            .next()
            .and_then(read_unsigned)
            .ok_or("a file's byte counts must be decimal numbers")
    };
    let (hashed_bytes, consumed_bytes) = (count()?, count()?);
    no_more(words)?;
    Ok(ConsumedFile {
        content_id,
        hashed_bytes,
        consumed_bytes,
    })
}

fn read_side(words: &mut Words<'_>, is_invite: bool) -> Result<CarriedSide, &'static str> {
    let callid = next_value(words)?;
    let from_tag = next_value(words)?;
    let to_tag = next_value(words)?;
    let time = read_time(words.next().ok_or(TOO_FEW)?)?;
    let (sip_code, sip_reason) = if is_invite {
        (next_value(words)?, next_value(words)?)
    } else {
        (Vec::new(), Vec::new())
    };
    let extras = words.map(read_value).collect::<Result<_, _>>()?;
    Ok(CarriedSide {
        is_invite,
        callid,
        from_tag,
        to_tag,
        time,
        sip_code,
        sip_reason,
        extras,
    })
}

const TOO_FEW: &str = "too few values";

fn next_value(words: &mut Words<'_>) -> Result<Vec<u8>, &'static str> {
    words.next().ok_or(TOO_FEW).and_then(read_value)
}

fn read_end(words: &mut Words<'_>) -> Result<CarriedEnd, &'static str> {
    let end_seconds = words
        .next()
        .and_then(|word| match word.strip_prefix(b"-") {
            Some(magnitude) => read_unsigned(magnitude)
                .and_then(|magnitude| i64::try_from(magnitude).ok())
                .map(|magnitude| -magnitude),
            None => read_unsigned(word).and_then(|seconds| i64::try_from(seconds).ok()),
        })
        .ok_or("an ended call's end must be whole epoch seconds")?;
    let call = words
        .next()
        .and_then(ContentId::from_hex)
        .ok_or("an ended call's hash must be 32 hex digits")?;
    no_more(words)?;
    Ok(CarriedEnd { end_seconds, call })
}

fn no_more(words: &mut Words<'_>) -> Result<(), &'static str> {
    match words.next() {
        None => Ok(()),
        Some(_) => Err("too many values"),
    }
}

fn read_unsigned(word: &[u8]) -> Option<u64> {
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

fn read_time(word: &[u8]) -> Result<Timestamp, &'static str> {
    Timestamp::parse(word).map_err(|_| "a time must be ISO-8601 UTC")
}

fn push_time(text: &mut String, time: &Timestamp) {
    let _ = write!(text, "{time}");
}

/// Appends a space and `value` written as a value.
fn push_value(text: &mut String, value: &[u8]) {
    text.push(' ');
    if value.is_empty() {
        text.push('-');
        return;
    }
    if value == b"-" {
        text.push_str("%2D");
        return;
    }
    for &byte in value {
        if byte <= b' ' || byte >= 0x7f || byte == b'%' {
            let _ = write!(text, "%{byte:02X}");
        } else {
            text.push(char::from(byte));
        }
    }
}

/// The bytes of a value written by [`push_value`].
fn read_value(word: &[u8]) -> Result<Vec<u8>, &'static str> {
    const BAD: &str = "a value must be `-` or text with %XX escapes";
    match word {
        [] => return Err(BAD),
        b"-" => return Ok(Vec::new()),
        _ => {}
    }
    let mut value = Vec::with_capacity(word.len());
    let mut rest = word;
    while let Some((&byte, after)) = rest.split_first() {
        if byte == b'%' {
            let (hex, after) = after.split_at_checked(2).ok_or(BAD)?;
            let digits = std::str::from_utf8(hex).map_err(|_| BAD)?;
            if !digits.bytes().all(|digit| digit.is_ascii_hexdigit()) {
                return Err(BAD);
            }
            value.push(u8::from_str_radix(digits, 16).map_err(|_| BAD)?);
            rest = after;
        } else {
            value.push(byte);
            rest = after;
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
