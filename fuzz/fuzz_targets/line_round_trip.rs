//! Any values, any escape mode: the encoder never panics; with `delimiter`, `strict` and `hex`
//! escaping a record is exactly one line with one column per value; with `strict` every text
//! and blob decodes back to its exact bytes, and numbers read back as the same numbers.
#![no_main]

use arbitrary::Arbitrary;
use flatstore::line::decode::decode_field;
use flatstore::line::encode::{Escape, LineBuf, LineFormat};
use flatstore::line::fields::split_fields;
use flatstore::line::value::{BadValue, Value};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Field {
    Null,
    Int(i32),
    UInt(u32),
    BigInt(i64),
    UBigInt(u64),
    Double(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
    DateTime(i64),
    Bitmap(u32),
}

#[derive(Arbitrary, Debug)]
struct Record {
    escape: u8,
    fields: Vec<Field>,
}

fn value(field: &Field) -> Value<'_> {
    match field {
        Field::Null => Value::Null,
        Field::Int(v) => Value::Int(*v),
        Field::UInt(v) => Value::UInt(*v),
        Field::BigInt(v) => Value::BigInt(*v),
        Field::UBigInt(v) => Value::UBigInt(*v),
        Field::Double(v) => Value::Double(*v),
        Field::Text(b) => Value::Str(b),
        Field::Blob(b) => Value::Blob(b),
        Field::DateTime(v) => Value::DateTime(*v),
        Field::Bitmap(v) => Value::Bitmap(*v),
    }
}

/// The bytes a number must read back as (C's `%d`, `%u`, `%lld`, `%llu`, `(unsigned)time_t`).
fn number_text(field: &Field) -> Option<String> {
    Some(match field {
        Field::Int(v) => v.to_string(),
        Field::UInt(v) | Field::Bitmap(v) => v.to_string(),
        Field::BigInt(v) => v.to_string(),
        Field::UBigInt(v) => v.to_string(),
        Field::DateTime(v) => (*v as u32).to_string(),
        Field::Double(v) if v.is_finite() => format!("{v:.6}"),
        _ => return None,
    })
}

fuzz_target!(|record: Record| {
    let escape = match record.escape % 4 {
        0 => Escape::Delimiter,
        1 => Escape::Strict,
        2 => Escape::Hex,
        _ => Escape::None,
    };
    let mut line = LineBuf::new();
    LineFormat { escape }
        .encode_record(record.fields.iter().map(|f| Ok::<_, BadValue>(value(f))), &mut line)
        .expect("no value is refused");
    let line = line.as_bytes();
    assert_eq!(line.last(), Some(&b'\n'));
    if escape == Escape::None {
        return;
    }
    let body = &line[..line.len() - 1];
    assert!(!body.contains(&b'\n') && !body.contains(&b'\r'), "{line:?}");
    let columns: Vec<&[u8]> = split_fields(body).collect();
    assert_eq!(columns.len(), record.fields.len().max(1), "{line:?}");
    for (field, column) in record.fields.iter().zip(&columns) {
        if let Some(text) = number_text(field) {
            assert_eq!(*column, text.as_bytes(), "{field:?}");
        }
        if escape != Escape::Strict {
            continue;
        }
        if let Field::Text(bytes) | Field::Blob(bytes) = field {
            let mut decoded = Vec::new();
            decode_field(column, &mut decoded).expect("strict escapes decode");
            assert_eq!(&decoded, bytes, "{line:?}");
        }
    }
});
