//! A line's fields: the one splitter of the line format, and the fields decoded into buffers
//! reused from line to line. Every reader splits here: `cat`, `export`, `verify`, `load`,
//! `--since`/`--until` and the accounting run.
//!
//! A line (without its `\n`) is split at every `|`: `a||b` is three fields, the middle one
//! empty, and an empty line is one empty field. The delimiters are found eight bytes at a
//! time ([`Delimiters`]); fields are decoded as [`decode_field_lenient`] decodes them.

use super::decode::decode_field_lenient;
use super::encode::DELIMITER;

/// One in every byte of a word.
const EVERY_BYTE: u64 = 0x0101_0101_0101_0101;
/// The delimiter in every byte of a word.
const DELIMITERS: u64 = EVERY_BYTE * DELIMITER as u64;

/// The positions of the delimiters of a line, in order, found eight bytes at a time.
#[derive(Clone, Debug)]
pub struct Delimiters<'a> {
    line: &'a [u8],
    /// Where the current word starts.
    at: usize,
    /// The high bit of each byte of the current word that is a delimiter not given yet.
    found: u64,
}

impl<'a> Delimiters<'a> {
    /// The delimiters of `line`.
    pub fn new(line: &'a [u8]) -> Self {
        let found = match line.is_empty() {
            true => 0,
            false => delimiters_in(word_at(line, 0)),
        };
        Delimiters { line, at: 0, found }
    }
}

impl Iterator for Delimiters<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.found == 0 {
            self.at += 8;
            if self.at >= self.line.len() {
                return None;
            }
            self.found = delimiters_in(word_at(self.line, self.at));
        }
        let position = self.at + self.found.trailing_zeros() as usize / 8;
        self.found &= self.found - 1;
        Some(position)
    }
}

/// The high bit of each byte of `word` that is a delimiter.
#[inline]
fn delimiters_in(word: u64) -> u64 {
    zero_bytes(word ^ DELIMITERS)
}

/// The eight bytes of `line` from `at` as a little-endian word, zeros past the end of the
/// line (a zero is not a delimiter). `at` is inside the line.
#[inline]
fn word_at(line: &[u8], at: usize) -> u64 {
    if let Some(bytes) = line[at..].first_chunk::<8>() {
        return u64::from_le_bytes(*bytes);
    }
    let rest = line.len() - at;
    match line.last_chunk::<8>() {
        // The last eight bytes of the line, shifted so that only the `rest` not looked at yet
        // remain.
        Some(last) => u64::from_le_bytes(*last) >> (8 * (8 - rest)),
        // A line shorter than a word, byte by byte.
        None => line[at..]
            .iter()
            .rev()
            .fold(0, |word, &byte| word << 8 | u64::from(byte)),
    }
}

/// The high bit of each byte of `word` that is zero, exactly (no carry crosses bytes).
#[inline]
fn zero_bytes(word: u64) -> u64 {
    const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((word & LOW_SEVEN).wrapping_add(LOW_SEVEN)) | word | LOW_SEVEN)
}

/// The raw (still escaped) fields of one line; `line` excludes its `\n`.
pub fn split_fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    Delimiters::new(line).chain([line.len()]).map(move |end| {
        let field = &line[start..end];
        start = end + 1;
        field
    })
}

/// How many fields `line` (without its `\n`) has: one more than its delimiters, counted with a
/// vectorised search.
pub fn field_count(line: &[u8]) -> usize {
    1 + memchr::memchr_iter(DELIMITER, line).count()
}

/// One line's fields, split and decoded, in one buffer that is reused from line to line: no
/// allocation per field or per line once the buffer has grown to the longest line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// The decoded fields, each followed by one separator byte.
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`; the next one starts one byte later.
    ends: Vec<usize>,
}

impl Fields {
    /// No fields yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the fields with those of `line` (without its `\n`), decoded.
    pub fn decode_line(&mut self, line: &[u8]) {
        self.bytes.clear();
        if needs_decoding(line) {
            self.decode_escaped(line);
        } else {
            // Nothing to decode: the line itself, cut at its delimiters.
            self.bytes.extend_from_slice(line);
            self.cut();
        }
    }

    /// [`decode_line`](Self::decode_line) of the line in `line`, taking its buffer instead of
    /// copying it when the line needs no decoding (`line` then gets the fields' old buffer,
    /// its content unspecified).
    pub fn decode_owned(&mut self, line: &mut Vec<u8>) {
        if needs_decoding(line) {
            self.bytes.clear();
            self.decode_escaped(line);
        } else {
            std::mem::swap(&mut self.bytes, line);
            self.cut();
        }
    }

    /// The ends of the fields of the undecoded line in `bytes`.
    fn cut(&mut self) {
        self.ends.clear();
        self.ends.extend(Delimiters::new(&self.bytes));
        self.ends.push(self.bytes.len());
    }

    /// Decodes the fields of `line` after what `bytes` holds (nothing).
    fn decode_escaped(&mut self, line: &[u8]) {
        self.ends.clear();
        for field in split_fields(line) {
            decode_field_lenient(field, &mut self.bytes);
            self.ends.push(self.bytes.len());
            self.bytes.push(DELIMITER);
        }
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no fields (only before the first line is decoded).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The field at `index` (from 0), if there is one.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.view().get(index)
    }

    /// The fields, borrowed.
    pub fn view(&self) -> FieldsView<'_> {
        FieldsView {
            bytes: &self.bytes,
            ends: &self.ends,
        }
    }

    /// The fields in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.view().iter()
    }
}

/// Whether some field of `line` has an escape to decode (a `%` or a `\`).
fn needs_decoding(line: &[u8]) -> bool {
    memchr::memchr2(b'%', b'\\', line).is_some()
}

/// One line's decoded fields, borrowed from [`Fields`] or [`Lines`].
#[derive(Clone, Copy, Debug)]
pub struct FieldsView<'r> {
    bytes: &'r [u8],
    ends: &'r [usize],
}

impl<'r> FieldsView<'r> {
    /// How many fields.
    pub fn len(self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(self) -> bool {
        self.ends.is_empty()
    }

    /// The field at `index` (from 0), if there is one.
    pub fn get(self, index: usize) -> Option<&'r [u8]> {
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] + 1,
        };
        self.bytes.get(start..end)
    }

    /// The fields in order.
    pub fn iter(self) -> impl ExactSizeIterator<Item = &'r [u8]> {
        (0..self.len()).map(move |index| self.get(index).unwrap_or_default())
    }
}

/// Several lines' fields, decoded (as [`Fields`] decodes them), one line after the other in a
/// few buffers reused from batch to batch: a batch of records handed from one thread to another
/// in one piece, read in the order it was written.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    /// Every line's decoded fields (each as in [`Fields`]), one line after the other.
    bytes: Vec<u8>,
    /// Every line's field ends, each relative to the start of its line.
    ends: Vec<usize>,
    /// Where each line starts in `bytes` and in `ends`.
    starts: Vec<(usize, usize)>,
}

impl Lines {
    /// No lines.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a copy of the line decoded in `fields`.
    pub fn push(&mut self, fields: &Fields) {
        self.starts.push((self.bytes.len(), self.ends.len()));
        self.bytes.extend_from_slice(&fields.bytes);
        self.ends.extend_from_slice(&fields.ends);
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Forgets every line, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.starts.clear();
    }

    /// The fields of the line at `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<FieldsView<'_>> {
        let &(bytes, ends) = self.starts.get(index)?;
        let (bytes_end, ends_end) = self
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or((self.bytes.len(), self.ends.len()));
        Some(FieldsView {
            bytes: self.bytes.get(bytes..bytes_end)?,
            ends: self.ends.get(ends..ends_end)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious splitter, the reference the fast one must agree with.
    fn obvious(line: &[u8]) -> Vec<&[u8]> {
        line.split(|&b| b == DELIMITER).collect()
    }

    #[test]
    fn fields_are_split_at_every_delimiter_and_decoded() {
        let mut fields = Fields::new();
        assert!(fields.is_empty());
        for (line, want) in [
            (&b""[..], vec![&b""[..]]),
            (b"a||b", vec![b"a", b"", b"b"]),
            (b"a%7Cb|100%|x\\x41", vec![b"a|b", b"100%", b"xA"]),
            (b"|", vec![b"", b""]),
            (b"0123456|89abcdef|", vec![b"0123456", b"89abcdef", b""]),
        ] {
            fields.decode_line(line);
            let got: Vec<&[u8]> = fields.iter().collect();
            assert_eq!(got, want, "{}", line.escape_ascii());
            assert_eq!(fields.get(want.len()), None);
            assert_eq!(field_count(line), want.len());
            assert_eq!(split_fields(line).count(), want.len());
        }
    }

    #[test]
    fn lines_kept_together_are_each_line_alone() {
        let texts: [&[u8]; 3] = [b"BYE|c%7Cid|x%25", b"INVITE|a||", b""];
        let (mut lines, mut fields) = (Lines::new(), Fields::new());
        assert!(lines.is_empty());
        for text in texts {
            fields.decode_line(text);
            lines.push(&fields);
        }
        assert_eq!(lines.len(), texts.len());
        for (index, text) in texts.iter().enumerate() {
            fields.decode_line(text);
            let together: Option<Vec<&[u8]>> = lines.get(index).map(|line| line.iter().collect());
            assert_eq!(together, Some(fields.iter().collect()));
        }
        assert!(lines.get(texts.len()).is_none());
        lines.clear();
        assert!(lines.is_empty());
    }

    proptest! {
        /// The fast splitter finds the fields the obvious one finds, whatever the bytes and
        /// wherever the delimiters fall in a word; decoded in one buffer (copied or taken),
        /// each field is what decode_field_lenient makes of it.
        #[test]
        fn the_splitter_agrees_with_the_obvious_one(
            line in prop::collection::vec(
                prop_oneof![
                    Just(b'|'),
                    Just(b'%'),
                    Just(b'\\'),
                    Just(b'x'),
                    Just(b'7'),
                    Just(b'C'),
                    0u8..=255,
                ],
                0..40,
            )
        ) {
            let want = obvious(&line);
            prop_assert_eq!(split_fields(&line).collect::<Vec<_>>(), want.clone());
            prop_assert_eq!(field_count(&line), want.len());
            let mut fields = Fields::new();
            fields.decode_line(&line);
            let mut owned = Fields::new();
            let mut taken = line.clone();
            owned.decode_owned(&mut taken);
            prop_assert_eq!(&owned, &fields);
            let decoded: Vec<Vec<u8>> = want
                .iter()
                .map(|field| {
                    let mut value = Vec::new();
                    decode_field_lenient(field, &mut value);
                    value
                })
                .collect();
            let got: Vec<Vec<u8>> = fields.iter().map(<[u8]>::to_vec).collect();
            prop_assert_eq!(got, decoded);
        }
    }
}
