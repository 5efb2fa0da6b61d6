//! Saving and restoring a state: round trips, calls carried across runs, and foreign or corrupt
//! states refused.

use super::*;
use crate::cdr::hash::content_id;
use crate::cdr::layout::Layout;
use crate::cdr::pairing::{FailedInvites, Paired};

fn options() -> PairingOptions {
    PairingOptions::new(FailedInvites::Ignore)
}

fn restored(bytes: &[u8]) -> Restored {
    match restore(bytes, options()) {
        Ok(restored) => restored,
        Err(error) => panic!("{error}\n{}", bytes.escape_ascii()),
    }
}

/// A pairer that has seen these default-layout lines (method, from_tag, to_tag, callid,
/// sip_code, sip_reason, time, extra8).
fn pairer_after(lines: &[[&[u8]; 8]]) -> Pairer {
    let layout = match Layout::kamailio_default(8) {
        Ok(layout) => layout,
        Err(error) => panic!("{error}"),
    };
    let mut pairer = Pairer::new(options());
    let mut out = Vec::new();
    for line in lines {
        let fields: Vec<Vec<u8>> = line.iter().map(|field| field.to_vec()).collect();
        match layout.view(&fields) {
            Ok(record) => pairer.push_to(&record, &mut out),
            Err(error) => panic!("{error}"),
        }
    }
    pairer
}

#[test]
fn an_empty_pairer_saves_as_a_few_readable_lines() {
    let files = [ConsumedFile {
        content_id: content_id(b""),
        hashed_bytes: 0,
        consumed_bytes: 17,
    }];
    let saved = save(&Pairer::new(options()), &files);
    assert_eq!(
        String::from_utf8_lossy(&saved),
        "flatstore-cdr-state 1\nnewest -\nfile 6c62272e07bb014262b821756295c58d 0 17\nend\n"
    );
    let back = restored(&saved);
    assert_eq!(back.files, files);
    assert_eq!(back.pairer.newest(), None);
    assert_eq!(back.pairer.open_calls(), 0);
}

#[test]
fn awkward_bytes_in_values_round_trip_exactly() {
    let pairer = pairer_after(&[
        [
            b"INVITE",
            b"a b",
            b"",
            b"c%d\n\xff",
            b"200",
            b"OK",
            b"1700000000.120",
            b"-",
        ],
        [
            b"BYE",
            b"x",
            b"y",
            b"-",
            b"200",
            b"OK",
            b"2023-11-14 22:13:25",
            b"%2D",
        ],
        [
            b"INVITE",
            b"p",
            b"q",
            b"ended",
            b"200",
            b"OK",
            b"1700000001",
            b"",
        ],
        [
            b"BYE",
            b"q",
            b"p",
            b"ended",
            b"200",
            b"OK",
            b"1700000002",
            b"",
        ],
        [
            b"ACK",
            b"p",
            b"q",
            b"later",
            b"200",
            b"OK",
            b"1700000003",
            b"",
        ],
    ]);
    let saved = save(&pairer, &[]);
    let text = String::from_utf8_lossy(&saved);
    assert!(
        text.contains("\ninvite c%25d%0A%FF a%20b - 2023-11-14T22:13:20.120Z 200 OK %2D\n"),
        "{text}"
    );
    assert!(
        text.contains("\nbye %2D x y 2023-11-14T22:13:25Z %252D\n"),
        "{text}"
    );
    assert!(text.contains("\nended 1700000002 "), "{text}");
    let back = restored(&saved);
    assert_eq!(back.pairer.open_calls(), 2);
    assert_eq!(save(&back.pairer, &[]), saved);
}

#[test]
fn an_ended_call_not_yet_emitted_is_carried_and_emitted_after_restore() {
    let pairer = pairer_after(&[
        [
            b"INVITE",
            b"a",
            b"b",
            b"cid",
            b"200",
            b"OK",
            b"1700000000",
            b"x",
        ],
        [
            b"BYE",
            b"b",
            b"a",
            b"cid",
            b"200",
            b"OK",
            b"1700000060",
            b"y",
        ],
    ]);
    let saved = save(&pairer, &[]);
    assert!(String::from_utf8_lossy(&saved).contains("\nbye cid b a 2023-11-14T22:14:20Z y\n"));
    let mut out = Vec::new();
    restored(&saved).pairer.finish_to(&mut out);
    let [Paired::Cdr(cdr)] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(
        cdr.duration.map(|duration| duration.to_string()),
        Some("60".into())
    );
    assert_eq!(cdr.extras, [b"x"]);
}

#[test]
fn foreign_newer_and_cut_short_states_are_refused() {
    let error = |bytes: &[u8]| restore(bytes, options()).err();
    assert_eq!(error(b""), Some(StateError::Foreign));
    assert_eq!(error(b"INVITE|a|b|c|200|OK|1\n"), Some(StateError::Foreign));
    assert_eq!(
        error(b"flatstore-cdr-state 2\nnewest -\nend\n"),
        Some(StateError::Version { found: "2".into() })
    );
    assert_eq!(
        error(b"flatstore-cdr-state 1\n"),
        Some(StateError::Truncated)
    );
    assert_eq!(
        error(b"flatstore-cdr-state 1\nnewest -\n"),
        Some(StateError::Truncated)
    );
    assert_eq!(
        error(b"flatstore-cdr-state 1\nnewest -\nended 5 6c62272e07bb014262b821756295c58d\n"),
        Some(StateError::Truncated)
    );
}

#[test]
fn corrupt_lines_are_refused_with_their_line_number() {
    let line_of = |body: &str| match restore(
        format!("flatstore-cdr-state 1\nnewest -\n{body}end\n").as_bytes(),
        options(),
    ) {
        Err(StateError::Corrupt { line, .. }) => Some(line),
        _ => None,
    };
    assert_eq!(line_of("file 6c62 1 2\n"), Some(3));
    assert_eq!(
        line_of("file 6c62272e07bb014262b821756295c58d 1\n"),
        Some(3)
    );
    assert_eq!(
        line_of("file 6c62272e07bb014262b821756295c58d 1 +2\n"),
        Some(3)
    );
    assert_eq!(
        line_of("file 6c62272e07bb014262b821756295c58d 1 2 3\n"),
        Some(3)
    );
    assert_eq!(line_of("\ninvite c a b 1700000000 200 OK\n"), Some(3));
    assert_eq!(line_of("invite c a b 1700000000 200\n"), Some(3));
    assert_eq!(line_of("invite c a b yesterday 200 OK\n"), Some(3));
    assert_eq!(line_of("invite c a b 1700000000 200 O%4\n"), Some(3));
    assert_eq!(line_of("invite c a b 1700000000 200 OK %zz\n"), Some(3));
    assert_eq!(line_of("invite c a b 1700000000 200  OK\n"), Some(3));
    assert_eq!(line_of("bye c a b 1 x\nbye c a b\n"), Some(4));
    assert_eq!(
        line_of("ended x 6c62272e07bb014262b821756295c58d\n"),
        Some(3)
    );
    assert_eq!(
        line_of("ended 5 6c62272e07bb014262b821756295c58d 1\n"),
        Some(3)
    );
    assert_eq!(line_of("callee x\n"), Some(3));
    assert_eq!(line_of("bye c a b 1\nbye c b a 2\n"), None);
    assert_eq!(
        restore(
            b"flatstore-cdr-state 1\nnewest -\ninvite c a b 1 200 OK\ninvite c b a 2 200 OK\nend\n",
            options()
        )
        .err(),
        Some(StateError::DoubleSide {
            callid: b"c".to_vec()
        })
    );
    assert_eq!(line_of("ended -5 6c62272e07bb014262b821756295c58d\n"), None);
    assert_eq!(
        restore(b"flatstore-cdr-state 1\nnewest -\nend\n\nfile\n", options()).err(),
        Some(StateError::Corrupt {
            line: 5,
            problem: "nothing may follow the \"end\" line"
        })
    );
    assert_eq!(
        restore(b"flatstore-cdr-state 1\nnewer -\nend\n", options())
            .err()
            .map(|error| error.to_string()),
        Some("CDR state line 2: the second line must be \"newest <time>\"".into())
    );
}
