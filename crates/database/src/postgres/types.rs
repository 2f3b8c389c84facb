//! The one table of the PostgreSQL types cannectors reads into JSON and binds from JSON.
//!
//! Decoding (`decode.rs`) and encoding (`encode.rs`) both start from [`PgType::of`], so a type
//! is read and bound under the same name, and a domain or an enum is what its base is on both
//! sides. docs/databases.md shows this table to users (the JSON each type becomes, the JSON
//! values each placeholder type accepts); keep the two in step.

use tokio_postgres::types::{Kind, Type};

/// A PostgreSQL type that has a JSON form, as cannectors reads and binds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    /// Read as a number; not bound.
    Oid,
    Float4,
    Float8,
    Numeric,
    /// `text`, `varchar`, `bpchar` (`char(n)`), `name`, `unknown`, `citext` and enums: UTF-8
    /// text on the wire.
    Text,
    /// The one-byte `"char"`; read as a string, not bound.
    Char,
    Timestamptz,
    Timestamp,
    Date,
    Time,
    Uuid,
    Json,
    Jsonb,
    Bytea,
    /// An array of any dimension; read as nested JSON arrays, not bound.
    Array(Box<PgType>),
}

impl PgType {
    /// How a value of `ty` maps to JSON; `None` for a type without a JSON form (such as
    /// `interval`, or an array of arrays' types). A domain is its base type.
    pub(crate) fn of(ty: &Type) -> Option<PgType> {
        Some(match *ty {
            Type::BOOL => PgType::Bool,
            Type::INT2 => PgType::Int2,
            Type::INT4 => PgType::Int4,
            Type::INT8 => PgType::Int8,
            Type::OID => PgType::Oid,
            Type::FLOAT4 => PgType::Float4,
            Type::FLOAT8 => PgType::Float8,
            Type::NUMERIC => PgType::Numeric,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => PgType::Text,
            Type::CHAR => PgType::Char,
            Type::TIMESTAMPTZ => PgType::Timestamptz,
            Type::TIMESTAMP => PgType::Timestamp,
            Type::DATE => PgType::Date,
            Type::TIME => PgType::Time,
            Type::UUID => PgType::Uuid,
            Type::JSON => PgType::Json,
            Type::JSONB => PgType::Jsonb,
            Type::BYTEA => PgType::Bytea,
            _ => match ty.kind() {
                Kind::Enum(_) => PgType::Text,
                Kind::Domain(base) => return PgType::of(base),
                Kind::Array(member) => match PgType::of(member)? {
                    PgType::Array(_) => return None,
                    member => PgType::Array(Box::new(member)),
                },
                _ if ty.name() == "citext" => PgType::Text,
                _ => return None,
            },
        })
    }

    /// Whether JSON values can be bound to a placeholder of this type.
    pub(crate) fn bindable(&self) -> bool {
        !matches!(self, PgType::Oid | PgType::Char | PgType::Array(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_like_type_is_text_on_both_sides() {
        for ty in [
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NAME,
            Type::UNKNOWN,
        ] {
            assert_eq!(PgType::of(&ty), Some(PgType::Text), "{ty}");
            assert!(PgType::Text.bindable());
        }
    }

    #[test]
    fn arrays_are_read_but_not_bound_and_arrays_of_unreadable_types_not_even_read() {
        let array = PgType::of(&Type::INT8_ARRAY).unwrap();
        assert_eq!(array, PgType::Array(Box::new(PgType::Int8)));
        assert!(!array.bindable());
        assert_eq!(PgType::of(&Type::INTERVAL_ARRAY), None);
        assert_eq!(PgType::of(&Type::INTERVAL), None);
    }

    #[test]
    fn a_domain_is_its_base_type() {
        let domain = Type::new(
            "positive".into(),
            0,
            Kind::Domain(Type::INT4),
            "public".into(),
        );
        assert_eq!(PgType::of(&domain), Some(PgType::Int4));
    }
}
