//! SQL text built from names an operator gives: identifiers always quoted, column types
//! checked to be type names and nothing else.

/// `name` as a quoted SQL identifier (`"name"`, a `"` doubled): taken exactly as written,
/// case and all.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table, optionally in a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema; `None`: the first schema of the search path.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableName {
    /// `--into`'s value: `table` or `schema.table`, each part exactly as written (quoted).
    pub fn parse(value: &str) -> Result<TableName, String> {
        let (schema, name) = match value.split_once('.') {
            Some((schema, name)) => (Some(schema.to_owned()), name.to_owned()),
            None => (None, value.to_owned()),
        };
        if name.is_empty() || schema.as_deref().is_some_and(str::is_empty) || name.contains('.') {
            return Err(format!(
                "{value:?} is no table name: give TABLE or SCHEMA.TABLE"
            ));
        }
        if value.contains('\0') {
            return Err(format!("{value:?}: a NUL byte"));
        }
        Ok(TableName { schema, name })
    }

    /// A table named exactly `name`, in the first schema of the search path.
    pub fn plain(name: &str) -> TableName {
        TableName {
            schema: None,
            name: name.to_owned(),
        }
    }

    /// The table in SQL, quoted.
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", ident(schema), ident(&self.name)),
            None => ident(&self.name),
        }
    }
}

/// `Err` unless `ty` reads as a type name: letters, digits, `_`, spaces, and the brackets,
/// commas and dots of `numeric(10,2)`, `varchar(64)`, `text[]` or `pg_catalog.int8`. The
/// server decides whether it is a type; this keeps anything but a type out of the statement.
pub fn check_type(ty: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " _(),[].".contains(c);
    if ty.trim().is_empty() || !ty.chars().all(allowed) {
        return Err(format!("{ty:?} is no SQL type name"));
    }
    Ok(())
}

/// `--types name=type,...` (given once or more): pairs in order. Commas inside brackets belong
/// to the type (`amount=numeric(10,2)`).
pub fn parse_types(values: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for value in values {
        let mut depth = 0i32;
        let mut start = 0;
        let mut items = Vec::new();
        for (i, c) in value.char_indices() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&value[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&value[start..]);
        for item in items {
            let Some((name, ty)) = item.split_once('=') else {
                return Err(format!("{item:?}: give NAME=TYPE"));
            };
            let (name, ty) = (name.trim(), ty.trim());
            if name.is_empty() {
                return Err(format!("{item:?}: the column name is empty"));
            }
            check_type(ty)?;
            if pairs.iter().any(|(n, _): &(String, String)| n == name) {
                return Err(format!("{name:?} is given twice"));
            }
            pairs.push((name.to_owned(), ty.to_owned()));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_exactly_as_written() {
        assert_eq!(ident("acc"), "\"acc\"");
        assert_eq!(ident("Sip \"Code\""), "\"Sip \"\"Code\"\"\"");
        assert_eq!(TableName::parse("acc").expect("plain").sql(), "\"acc\"");
        assert_eq!(
            TableName::parse("billing.Acc").expect("qualified").sql(),
            "\"billing\".\"Acc\""
        );
        for bad in ["", ".acc", "billing.", "a.b.c"] {
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn types_split_at_the_commas_between_them() {
        let types = parse_types(&[
            "sip_code=int, amount=numeric(10,2)".into(),
            "tags=text[]".into(),
        ])
        .expect("types");
        assert_eq!(
            types,
            [
                ("sip_code".into(), "int".into()),
                ("amount".into(), "numeric(10,2)".into()),
                ("tags".into(), "text[]".into()),
            ]
        );
        for bad in [
            "sip_code",
            "=int",
            "a=int,a=text",
            "a=int; DROP TABLE acc",
            "a='x'",
            "a=",
        ] {
            assert!(parse_types(&[bad.into()]).is_err(), "{bad:?}");
        }
    }
}
