//! Layouts from column names, and the records they read.

use super::*;

fn line(fields: &[&str]) -> Vec<Vec<u8>> {
    fields
        .iter()
        .map(|field| field.as_bytes().to_vec())
        .collect()
}

#[test]
fn the_default_layout_is_kamailios_order_then_numbered_extras() -> Result<(), LayoutError> {
    let layout = Layout::kamailio_default(9)?;
    assert_eq!(
        layout.extra_names().collect::<Vec<_>>(),
        [b"extra8", b"extra9"]
    );
    let fields = line(&[
        "INVITE",
        "ft",
        "tt",
        "cid",
        "200",
        "OK",
        "1700000000",
        "alice",
        "bob",
    ]);
    let record = match layout.view(&fields) {
        Ok(record) => record,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(record.method(), b"INVITE");
    assert_eq!(record.from_tag(), b"ft");
    assert_eq!(record.to_tag(), b"tt");
    assert_eq!(record.callid(), b"cid");
    assert_eq!(record.sip_code(), b"200");
    assert_eq!(record.sip_reason(), b"OK");
    assert_eq!(record.time().to_string(), "2023-11-14T22:13:20Z");
    assert_eq!(record.extras().collect::<Vec<_>>(), [&b"alice"[..], b"bob"]);
    assert_eq!(
        Layout::kamailio_default(6),
        Err(LayoutError::TooFewColumns { found: 6 })
    );
    assert_eq!(Layout::kamailio_default(7)?.extra_names().len(), 0);
    Ok(())
}

#[test]
fn named_columns_find_roles_anywhere_and_keep_extras_in_order() -> Result<(), LayoutError> {
    let names = [
        "src_user",
        "time",
        "callid",
        "method",
        "to_tag",
        "dst_user",
        "from_tag",
        "sip_reason",
        "sip_code",
    ];
    let layout = Layout::from_names(&names)?;
    assert_eq!(layout.width(), 9);
    assert_eq!(
        layout.extra_names().collect::<Vec<_>>(),
        [&b"src_user"[..], b"dst_user"]
    );
    let fields = line(&[
        "alice",
        "1700000000.5",
        "cid",
        "BYE",
        "tt",
        "bob",
        "ft",
        "OK",
        "200",
    ]);
    let record = match layout.view(&fields) {
        Ok(record) => record,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(
        [
            record.method(),
            record.from_tag(),
            record.to_tag(),
            record.callid()
        ],
        [&b"BYE"[..], b"ft", b"tt", b"cid"]
    );
    assert_eq!(
        [record.sip_code(), record.sip_reason()],
        [&b"200"[..], b"OK"]
    );
    assert_eq!(record.time().fraction_digits(), 1);
    assert_eq!(record.extras().collect::<Vec<_>>(), [&b"alice"[..], b"bob"]);
    Ok(())
}

#[test]
fn named_columns_must_hold_every_role_once() {
    let error = Layout::from_names(&["method", "callid", "time", "src_user"]);
    assert_eq!(
        error,
        Err(LayoutError::MissingRoles {
            missing: vec!["from_tag", "to_tag", "sip_code", "sip_reason"]
        })
    );
    assert_eq!(
        error.map_err(|error| error.to_string()),
        Err("no column named from_tag, to_tag, sip_code, sip_reason".to_owned())
    );
    let mut names = ROLE_NAMES.to_vec();
    names.push("time");
    assert_eq!(
        Layout::from_names(&names),
        Err(LayoutError::Duplicate {
            name: b"time".to_vec()
        })
    );
    names[7] = "";
    assert_eq!(
        Layout::from_names(&names),
        Err(LayoutError::Unnamed { position: 8 })
    );
    names[7] = "status";
    assert_eq!(
        Layout::from_names(&names),
        Err(LayoutError::ClashesWithCdrField {
            name: b"status".to_vec()
        })
    );
}

/// OpenSIPS's `acc` with a `do_accounting` context: the seven roles, then setuptime, created,
/// duration, ms_duration.
const OPENSIPS_ACC: [&str; 11] = [
    "method",
    "from_tag",
    "to_tag",
    "callid",
    "sip_code",
    "sip_reason",
    "time",
    "setuptime",
    "created",
    "duration",
    "ms_duration",
];

#[test]
fn a_line_with_a_positive_call_length_is_a_whole_call() -> Result<(), LayoutError> {
    let layout = Layout::from_names(&OPENSIPS_ACC)?;
    assert_eq!(
        layout.extra_names().collect::<Vec<_>>(),
        [&b"setuptime"[..], b"created"],
        "the length columns are no extras"
    );
    let length = |fields: &[&str]| {
        let fields = line(fields);
        match layout.view(&fields) {
            Ok(record) => record.call_length().map(|length| length.to_string()),
            Err(error) => panic!("{error}"),
        }
    };
    let cdr_mode = [
        "INVITE",
        "ft",
        "tt",
        "cid",
        "200",
        "OK",
        "1700000000",
        "3",
        "1699999997",
        "3",
        "2040",
    ];
    assert_eq!(
        length(&cdr_mode).as_deref(),
        Some("2.040"),
        "ms_duration wins"
    );
    let mut per_request = cdr_mode;
    per_request[9..].copy_from_slice(&["0", "0"]);
    assert_eq!(length(&per_request), None, "a request with a context: 0");
    let mut bye = cdr_mode;
    bye[0] = "BYE";
    assert_eq!(length(&bye), None, "only an INVITE is a call");
    let mut failed = cdr_mode;
    failed[4] = "486";
    assert_eq!(length(&failed), None, "only an answered INVITE is a call");
    let mut unreadable = cdr_mode;
    unreadable[10] = "2s";
    assert_eq!(
        length(&unreadable),
        None,
        "ms_duration is read, not guessed"
    );

    let seconds_only = Layout::from_names(&OPENSIPS_ACC[..10])?;
    let fields = line(&cdr_mode[..10]);
    let record = match seconds_only.view(&fields) {
        Ok(record) => record,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(
        record.call_length().map(|l| l.to_string()).as_deref(),
        Some("3")
    );
    let kamailio = Layout::kamailio_default(11)?;
    let fields = line(&cdr_mode);
    let record = match kamailio.view(&fields) {
        Ok(record) => record,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(record.call_length(), None, "recognised by name only");
    Ok(())
}

#[test]
fn lines_of_the_wrong_width_or_with_an_unreadable_time_are_errors() -> Result<(), LayoutError> {
    let layout = Layout::kamailio_default(7)?;
    let short = line(&["INVITE", "ft", "tt", "cid", "200", "OK"]);
    assert_eq!(
        layout.view(&short).err(),
        Some(RecordError::FieldCount {
            expected: 7,
            found: 6
        })
    );
    let bad_time = line(&["INVITE", "ft", "tt", "cid", "200", "OK", "yesterday"]);
    let error = layout.view(&bad_time).err();
    assert_eq!(
        error,
        Some(RecordError::Time {
            text: b"yesterday".to_vec(),
            source: TimeError::Malformed
        })
    );
    assert_eq!(layout.time(&bad_time).err(), error);
    Ok(())
}

#[test]
fn decoded_fields_are_the_fields_of_the_line_and_view_as_its_record() -> Result<(), LayoutError> {
    let mut fields = Fields::new();
    assert!(fields.is_empty());
    for (line, want) in [
        (&b""[..], vec![&b""[..]]),
        (b"a||b", vec![b"a", b"", b"b"]),
        (b"a%7Cb|100%|x\\x41", vec![b"a|b", b"100%", b"xA"]),
        (b"|", vec![b"", b""]),
    ] {
        fields.decode_line(line);
        let got: Vec<&[u8]> = fields.iter().collect();
        assert_eq!(got, want, "{}", line.escape_ascii());
        assert_eq!(fields.get(want.len()), None);
    }
    let layout = Layout::kamailio_default(8)?;
    fields.decode_line(b"BYE|ft|tt|c%7Cid|200|OK|1700000000.5|x%25");
    let record = match layout.view_fields(&fields) {
        Ok(record) => record,
        Err(error) => panic!("{error}"),
    };
    assert_eq!([record.method(), record.callid()], [&b"BYE"[..], b"c|id"]);
    assert_eq!(record.extras().collect::<Vec<_>>(), [b"x%"]);
    assert_eq!(layout.fields_time(&fields).ok(), Some(record.time()));
    let time = record.time();
    let at = layout.view_fields_at(&fields, time).map(|r| r.time());
    assert_eq!(at.ok(), Some(time));
    fields.decode_line(b"BYE|ft|tt|cid|200|OK");
    assert_eq!(
        layout.view_fields_at(&fields, time).err(),
        Some(RecordError::FieldCount {
            expected: 8,
            found: 6
        })
    );
    Ok(())
}

#[test]
fn lines_kept_together_view_as_each_line_alone() -> Result<(), LayoutError> {
    let layout = Layout::kamailio_default(8)?;
    let texts: [&[u8]; 4] = [
        b"BYE|ft|tt|c%7Cid|200|OK|1700000000.5|x%25",
        b"INVITE|a||cid|200|OK|1700000001|",
        b"BYE|ft|tt|cid|200|OK",
        b"INVITE|b|c|d|486|Busy Here|1700000002|extra",
    ];
    let (mut lines, mut fields) = (Lines::new(), Fields::new());
    assert!(lines.is_empty());
    for text in texts {
        fields.decode_line(text);
        lines.push(&fields);
    }
    assert_eq!(lines.len(), texts.len());
    let time = Timestamp::EPOCH;
    for (index, text) in texts.iter().enumerate() {
        fields.decode_line(text);
        let alone = layout.view_fields_at(&fields, time);
        let together = layout.view_line_at(&lines, index, time);
        match (alone, together) {
            (Ok(alone), Some(Ok(together))) => {
                let all = |r: &CallRecord<'_>| {
                    let mut all = vec![r.method(), r.from_tag(), r.to_tag(), r.callid()];
                    all.extend([r.sip_code(), r.sip_reason()]);
                    all.extend(r.extras());
                    all.into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>()
                };
                assert_eq!(all(&alone), all(&together));
            }
            (Err(alone), Some(Err(together))) => assert_eq!(alone, together),
            _ => panic!("line {index} views differently"),
        }
    }
    assert!(layout.view_line_at(&lines, texts.len(), time).is_none());
    lines.clear();
    assert!(lines.is_empty());
    Ok(())
}

/// The seven roles, then `more`.
fn kamailio_names(more: &[&'static str]) -> Vec<&'static str> {
    ROLE_NAMES.iter().chain(more).copied().collect()
}

/// The time (ISO-8601) `layout` reads from a BYE whose seventh field is `seventh`, then `more`,
/// the same through every way a line is read.
fn time_of(layout: &Layout, seventh: &str, more: &[&str]) -> String {
    let mut texts = vec!["BYE", "ft", "tt", "cid", "200", "OK", seventh];
    texts.extend(more);
    let vecs = line(&texts);
    let mut fields = Fields::new();
    fields.decode_line(texts.join("|").as_bytes());
    let viewed = match layout.view(&vecs) {
        Ok(record) => record.time(),
        Err(error) => panic!("{error}"),
    };
    assert_eq!(layout.time(&vecs).ok(), Some(viewed));
    assert_eq!(layout.fields_time(&fields).ok(), Some(viewed));
    assert_eq!(
        layout.view_fields(&fields).map(|record| record.time()).ok(),
        Some(viewed)
    );
    viewed.to_string()
}

#[test]
fn acc_time_mode_2_time_hires_or_time_attr_is_the_time() -> Result<(), LayoutError> {
    for name in ["time_hires", "time_attr"] {
        let layout = Layout::from_names(&kamailio_names(&[name, "src_user"]))?;
        assert_eq!(
            layout.extra_names().collect::<Vec<_>>(),
            [name.as_bytes(), b"src_user"],
            "still an extra"
        );
        assert_eq!(
            time_of(&layout, "1795392000", &["1795392000.005123", "alice"]),
            "2026-11-23T00:00:00.005123Z",
            "{name}"
        );
        let fields = line(&[
            "BYE",
            "ft",
            "tt",
            "cid",
            "200",
            "OK",
            "1795392000",
            "1795392000.005123",
            "alice",
        ]);
        let extras: Vec<&[u8]> = match layout.view(&fields) {
            Ok(record) => record.extras().collect(),
            Err(error) => panic!("{error}"),
        };
        assert_eq!(extras, [&b"1795392000.005123"[..], b"alice"]);
    }
    let both = Layout::from_names(&kamailio_names(&["time_attr", "time_hires"]))?;
    assert_eq!(
        time_of(
            &both,
            "1795392000",
            &["2026-11-23 00:00:00", "1795392000.25"]
        ),
        "2026-11-23T00:00:00.25Z",
        "time_hires before time_attr"
    );
    Ok(())
}

#[test]
fn acc_time_mode_1_seconds_and_microseconds_are_the_time() -> Result<(), LayoutError> {
    let layout = Layout::from_names(&kamailio_names(&["time_attr", "time_exten"]))?;
    assert_eq!(
        time_of(&layout, "1795392000", &["1795392000", "5123"]),
        "2026-11-23T00:00:00.005123Z"
    );
    let renamed = Layout::from_names(&kamailio_names(&["seconds", "time_exten"]))?;
    assert_eq!(
        time_of(&renamed, "1795392000", &["1795392000", "999999"]),
        "2026-11-23T00:00:00.999999Z",
        "without time_attr, time's seconds"
    );
    assert_eq!(
        time_of(&layout, "1795392000", &["", "5123"]),
        "2026-11-23T00:00:00Z",
        "an empty seconds column: time"
    );
    Ok(())
}

#[test]
fn a_finer_column_that_does_not_read_or_disagrees_leaves_the_time() -> Result<(), LayoutError> {
    let decimal = Layout::from_names(&kamailio_names(&["time_hires"]))?;
    for (finer, why) in [
        ("", "empty"),
        ("1795392000", "whole seconds: no finer"),
        ("2026-11-23 01:00:00", "time_mode 3's local time"),
        ("2026-11-23 00:00:00", "time_mode 4's date: no finer"),
        ("soon", "malformed"),
        ("1795392001.5", "another second"),
        ("1795305600.5", "another day"),
    ] {
        assert_eq!(
            time_of(&decimal, "1795392000", &[finer]),
            "2026-11-23T00:00:00Z",
            "{why}"
        );
    }
    let micros = Layout::from_names(&kamailio_names(&["time_attr", "time_exten"]))?;
    for (seconds, exten, why) in [
        ("1795392000", "", "no microseconds"),
        ("1795392000", "1000000", "not microseconds"),
        ("1795392001", "5", "another second"),
        ("2026-11-23 00:00:00", "5", "time_attr not seconds"),
    ] {
        assert_eq!(
            time_of(&micros, "1795392000", &[seconds, exten]),
            "2026-11-23T00:00:00Z",
            "{why}"
        );
    }
    // An unreadable `time` stays an error whatever the finer column holds.
    let fields = line(&[
        "BYE",
        "ft",
        "tt",
        "cid",
        "200",
        "OK",
        "soon",
        "1795392000.5",
    ]);
    assert_eq!(
        decimal.view(&fields).err(),
        Some(RecordError::Time {
            text: b"soon".to_vec(),
            source: TimeError::Malformed
        })
    );
    Ok(())
}

#[test]
fn names_decide_the_finer_time_so_columns_can_turn_it_on_or_off() -> Result<(), LayoutError> {
    let more = ["1795392000.005123"];
    let default = Layout::kamailio_default(8)?;
    assert_eq!(
        time_of(&default, "1795392000", &more),
        "2026-11-23T00:00:00Z",
        "unnamed: extra8"
    );
    let renamed = Layout::from_names(&kamailio_names(&["hires"]))?;
    assert_eq!(
        time_of(&renamed, "1795392000", &more),
        "2026-11-23T00:00:00Z",
        "named otherwise: off"
    );
    // The finer column named `time`, the seconds column something else: as it was read.
    let mut swapped = kamailio_names(&["time"]);
    swapped[6] = "time_s";
    let swapped = Layout::from_names(&swapped)?;
    assert_eq!(
        time_of(&swapped, "1795392000", &["1795392000.005123"]),
        "2026-11-23T00:00:00.005123Z"
    );
    Ok(())
}
