//! Call keys: a record's Call-ID and tags, kept length-prefixed and hashed; and records
//! prepared for pairing ahead (on the thread that reads them).

use std::hash::Hasher as _;

use crate::cdr::hash::{ContentId, FastHasher, content_id};
use crate::cdr::layout::CallRecord;
use crate::cdr::parts::{Parts, push_part};

/// The first digit of a three-digit status code, `None` if it is not one.
pub(crate) fn answer_class(sip_code: &[u8]) -> Option<u8> {
    match sip_code {
        [class @ b'1'..=b'6', b'0'..=b'9', b'0'..=b'9'] => Some(*class),
        _ => None,
    }
}

/// A call's identity as a record gives it: its Call-ID and its two tags in byte order. Kept
/// (see [`KeyParts::push`]) each length-prefixed, so that different calls never have the same
/// bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct KeyParts<'a> {
    pub(super) callid: &'a [u8],
    pub(super) first: &'a [u8],
    pub(super) second: &'a [u8],
    /// Whether the From tag is the first tag.
    pub(super) from_is_first: bool,
}

impl<'a> KeyParts<'a> {
    pub(super) fn new(callid: &'a [u8], from_tag: &'a [u8], to_tag: &'a [u8]) -> Self {
        let from_is_first = from_tag <= to_tag;
        let (first, second) = if from_is_first {
            (from_tag, to_tag)
        } else {
            (to_tag, from_tag)
        };
        Self {
            callid,
            first,
            second,
            from_is_first,
        }
    }

    pub(super) fn of(record: &CallRecord<'a>) -> Self {
        Self::new(record.callid(), record.from_tag(), record.to_tag())
    }

    pub(super) fn parts(&self) -> [&'a [u8]; 3] {
        [self.callid, self.first, self.second]
    }

    /// The fast hash the pairer's index finds the call by.
    pub(super) fn fast_hash(&self) -> u64 {
        let mut hasher = FastHasher::default();
        for part in self.parts() {
            hasher.write(part);
        }
        hasher.finish()
    }

    /// The content hash of the kept bytes, the name of the call once it ended; `bytes` is
    /// left holding them.
    pub(super) fn content_id(&self, bytes: &mut Vec<u8>) -> ContentId {
        bytes.clear();
        self.push(bytes);
        content_id(bytes)
    }

    /// Whether kept key bytes are this key.
    pub(super) fn is(&self, key: &[u8]) -> bool {
        let (callid, first, second) = key_parts(key);
        callid == self.callid && first == self.first && second == self.second
    }

    /// Appends the key as kept.
    pub(super) fn push(&self, bytes: &mut Vec<u8>) {
        for part in self.parts() {
            push_part(bytes, part);
        }
    }
}

/// Records prepared for pairing ahead, one entry per record, in order (on the thread that
/// reads the records, say, so that the pairing thread does less): each INVITE's or BYE's call
/// key hashed and kept as the pairer keeps it, with its side's parts; and for answered INVITEs
/// (the records that open calls, as a rule) the key's content hash. The pairer works out the
/// content hash itself when another record opens a call. Reused from batch to batch.
#[derive(Clone, Debug, Default)]
pub struct PreparedKeys {
    /// Each entry's kept key, then its side's parts.
    pub(super) bytes: Vec<u8>,
    pub(super) keys: Vec<Option<PreparedKey>>,
}

/// One record prepared: see [`PreparedKeys`].
#[derive(Clone, Copy, Debug)]
pub(super) struct PreparedKey {
    pub(super) hash: u64,
    pub(super) id: Option<ContentId>,
    pub(super) from_is_first: bool,
    /// Where the kept key starts in the bytes; its side's parts follow it.
    pub(super) start: usize,
    pub(super) key_length: usize,
    pub(super) side_length: usize,
}

/// A prepared record as pairing uses it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ahead<'a> {
    pub(super) hash: u64,
    pub(super) id: Option<ContentId>,
    pub(super) from_is_first: bool,
    /// The key as kept (see [`KeyParts::push`]).
    pub(super) key: &'a [u8],
    /// The side's parts (see [`fill_side`]).
    pub(super) side: &'a [u8],
}

impl PreparedKeys {
    /// Prepares the next record: `None` for a line that is no call record.
    pub fn push(&mut self, record: Option<&CallRecord<'_>>) {
        let prepared = record.and_then(|record| {
            let is_invite = match record.method() {
                b"INVITE" if answer_class(record.sip_code()) == Some(b'2') => true,
                b"BYE" => false,
                _ => return None,
            };
            let key = KeyParts::of(record);
            let start = self.bytes.len();
            key.push(&mut self.bytes);
            let key_length = self.bytes.len() - start;
            let id = is_invite.then(|| content_id(&self.bytes[start..]));
            append_side(&mut self.bytes, record, is_invite);
            Some(PreparedKey {
                hash: key.fast_hash(),
                id,
                from_is_first: key.from_is_first,
                start,
                key_length,
                side_length: self.bytes.len() - start - key_length,
            })
        });
        self.keys.push(prepared);
    }

    /// How many records were prepared.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none was.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Forgets every record, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.keys.clear();
    }

    pub(super) fn get(&self, index: usize) -> Option<Ahead<'_>> {
        let key = (*self.keys.get(index)?)?;
        let key_end = key.start + key.key_length;
        Some(Ahead {
            hash: key.hash,
            id: key.id,
            from_is_first: key.from_is_first,
            key: self.bytes.get(key.start..key_end)?,
            side: self.bytes.get(key_end..key_end + key.side_length)?,
        })
    }
}

/// Fills `side` with a record's side: an INVITE's status code and reason (none for a BYE),
/// then the extras, each length-prefixed; copied from `ahead` when the record was prepared.
pub(super) fn fill_side(
    side: &mut Vec<u8>,
    record: &CallRecord<'_>,
    is_invite: bool,
    ahead: Option<Ahead<'_>>,
) {
    side.clear();
    match ahead {
        Some(ahead) => side.extend_from_slice(ahead.side),
        None => append_side(side, record, is_invite),
    }
}

/// Appends a record's side to `bytes` (see [`fill_side`]).
pub(super) fn append_side(bytes: &mut Vec<u8>, record: &CallRecord<'_>, is_invite: bool) {
    let answer = if is_invite {
        [record.sip_code(), record.sip_reason()]
    } else {
        [&[][..], &[][..]]
    };
    for part in answer.into_iter().chain(record.extras()) {
        push_part(bytes, part);
    }
}

/// A key's Call-ID, first tag and second tag.
pub(super) fn key_parts(key: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut parts = Parts(key);
    let mut next = || parts.next().unwrap_or_default();
    (next(), next(), next())
}

/// The (From tag, To tag) of a side's record, from its call's key.
pub(super) fn tags(key: &[u8], from_is_first: bool) -> (&[u8], &[u8]) {
    let (_, first, second) = key_parts(key);
    if from_is_first {
        (first, second)
    } else {
        (second, first)
    }
}
