//! Unit tests of the pure parts of the Cassandra connector (no cluster needed).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use borboleta_core::CassandraConfigSpec;
use borboleta_core::spec::OneOrMany;
use scylla::statement::Consistency;
use scylla::value::CqlValue;

use super::*;

fn err(r: Result<impl std::fmt::Debug>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            assert!(e.is_spec_error(), "not a spec error: {e}");
            e.to_string()
        }
    }
}

fn spec_msg(path: &str, msg: &str) -> String {
    format!("invalid pipeline spec (1 problem):\n  - {path}: {msg}")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn check_name_keyspace_and_table() {
    assert!(check_name("keyspace", "feature_store_1").is_ok());
    assert!(check_name("table", &"a".repeat(48)).is_ok());
    assert_eq!(
        err(check_name("table", &"a".repeat(49))),
        spec_msg(
            "cassandra",
            &format!("`{}` is not a valid Cassandra table name", "a".repeat(49))
        )
    );
    assert_eq!(
        err(check_name("keyspace", "")),
        spec_msg("cassandra", "`` is not a valid Cassandra keyspace name")
    );
    assert_eq!(
        err(check_name("keyspace", "a-b")),
        spec_msg("cassandra", "`a-b` is not a valid Cassandra keyspace name")
    );
    assert_eq!(
        err(check_name("table", "tábua")),
        spec_msg("cassandra", "`tábua` is not a valid Cassandra table name")
    );
}

#[test]
fn check_name_column() {
    assert!(check_name("column", "a b-\"c\"é").is_ok());
    assert_eq!(
        err(check_name("column", "")),
        spec_msg("cassandra", "`` is not a valid Cassandra column name")
    );
    assert_eq!(
        err(check_name("column", "a\nb")),
        spec_msg("cassandra", "`a\nb` is not a valid Cassandra column name")
    );
}

#[test]
fn keyspace_cql() {
    assert_eq!(
        create_keyspace_cql("fs").unwrap(),
        "CREATE KEYSPACE IF NOT EXISTS \"fs\" WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
    );
    assert_eq!(
        err(create_keyspace_cql("f;s")),
        spec_msg("cassandra", "`f;s` is not a valid Cassandra keyspace name")
    );
}

#[test]
fn table_cql() {
    let cols = vec![
        ("id".to_string(), "bigint".to_string()),
        ("region".to_string(), "text".to_string()),
        ("say \"hi\"".to_string(), "list<double>".to_string()),
    ];
    assert_eq!(
        create_table_cql("fs", "orders", &cols, &s(&["id", "region"])).unwrap(),
        "CREATE TABLE IF NOT EXISTS \"fs\".\"orders\" (\"id\" bigint, \"region\" text, \"say \"\"hi\"\"\" list<double>, \
         PRIMARY KEY ((\"id\", \"region\")))"
    );
    assert_eq!(
        create_table_cql("fs", "t", &cols[..1], &s(&["id"])).unwrap(),
        "CREATE TABLE IF NOT EXISTS \"fs\".\"t\" (\"id\" bigint, PRIMARY KEY ((\"id\")))"
    );
    assert_eq!(
        err(create_table_cql("fs", "bad table", &cols, &s(&["id"]))),
        spec_msg("cassandra", "`bad table` is not a valid Cassandra table name")
    );
    assert_eq!(
        err(create_table_cql(
            "fs",
            "t",
            &[("\t".to_string(), "int".to_string())],
            &s(&["id"])
        )),
        spec_msg("cassandra", "`\t` is not a valid Cassandra column name")
    );
    assert_eq!(
        err(create_table_cql("fs", "t", &cols, &s(&[""]))),
        spec_msg("cassandra", "`` is not a valid Cassandra column name")
    );
}

#[test]
fn alter_and_drop_cql() {
    assert_eq!(
        add_column_cql("fs", "orders", "total", "double").unwrap(),
        "ALTER TABLE \"fs\".\"orders\" ADD \"total\" double"
    );
    assert_eq!(
        err(add_column_cql("fs", "orders", "", "double")),
        spec_msg("cassandra", "`` is not a valid Cassandra column name")
    );
    assert_eq!(
        err(add_column_cql("f s", "orders", "x", "double")),
        spec_msg("cassandra", "`f s` is not a valid Cassandra keyspace name")
    );
    assert_eq!(
        drop_table_cql("fs", "orders").unwrap(),
        "DROP TABLE IF EXISTS \"fs\".\"orders\""
    );
    assert_eq!(
        err(drop_table_cql("fs", "o.rders")),
        spec_msg("cassandra", "`o.rders` is not a valid Cassandra table name")
    );
}

#[test]
fn same_type() {
    assert!(same_cql_type("bigint", "bigint"));
    assert!(same_cql_type("BIGINT", "bigint"));
    assert!(same_cql_type("varchar", "text"));
    assert!(!same_cql_type("text", "varchar"));
    assert!(!same_cql_type("int", "bigint"));
    assert!(!same_cql_type("list<int>", "list<bigint>"));
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t, true)))
}

#[test]
fn cql_types_mapped() {
    let cases = [
        (DataType::Int64, "bigint"),
        (DataType::Int32, "int"),
        (DataType::Int16, "smallint"),
        (DataType::Float64, "double"),
        (DataType::Float32, "float"),
        (DataType::Utf8, "text"),
        (DataType::LargeUtf8, "text"),
        (DataType::Utf8View, "text"),
        (DataType::Boolean, "boolean"),
        (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "timestamp",
        ),
        (DataType::Timestamp(TimeUnit::Second, None), "timestamp"),
        (DataType::Timestamp(TimeUnit::Nanosecond, None), "timestamp"),
        (DataType::Date32, "date"),
        (list_of(DataType::Int64), "list<bigint>"),
        (list_of(DataType::Utf8), "list<text>"),
        (list_of(list_of(DataType::Float64)), "list<list<double>>"),
    ];
    for (t, want) in cases {
        assert_eq!(cql_type(&t).as_deref(), Some(want), "{t}");
    }
}

#[test]
fn cql_types_refused() {
    let cases = [
        DataType::Int8,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float16,
        DataType::Date64,
        DataType::Binary,
        DataType::Decimal128(10, 2),
        DataType::Null,
        DataType::LargeList(Arc::new(Field::new("item", DataType::Int64, true))),
        list_of(DataType::UInt8),
        DataType::Struct(vec![Field::new("a", DataType::Int64, true)].into()),
    ];
    for t in cases {
        assert_eq!(cql_type(&t), None, "{t}");
    }
}

#[test]
fn columns_of_schema() {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("tags", list_of(DataType::Utf8), true),
    ]);
    assert_eq!(
        cql_columns(&schema).unwrap(),
        vec![
            ("id".to_string(), "bigint".to_string()),
            ("tags".to_string(), "list<text>".to_string())
        ]
    );
    let bad = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("flag", DataType::UInt8, true),
    ]);
    assert_eq!(
        err(cql_columns(&bad)),
        spec_msg("feature_set", "column `flag`: type UInt8 has no Cassandra type")
    );
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn resolve_defaults() {
    let spec = CassandraConfigSpec {
        keyspace: Some("fs".into()),
        ..Default::default()
    };
    let c = CassandraConfig::resolve(&spec, &no_env).unwrap();
    assert_eq!(c.hosts, s(&["127.0.0.1:9042"]));
    assert_eq!(c.keyspace, "fs");
    assert_eq!(c.local_dc, None);
    assert_eq!(c.credentials, None);
    assert_eq!(c.read_consistency, Consistency::LocalOne);
    assert_eq!(c.write_consistency, Consistency::LocalQuorum);
    assert!(!c.create_keyspace);
    assert_eq!(c.tls_ca_file, None);
}

#[test]
fn resolve_from_env() {
    let env = env_of(&[
        ("CASSANDRA_HOST", "a, b:9999 ,,c"),
        ("CASSANDRA_KEYSPACE", "from_env"),
        ("CASSANDRA_USERNAME", "u"),
        ("CASSANDRA_PASSWORD", "p"),
        ("CASSANDRA_READ_CONSISTENCY_LEVEL", "quorum"),
        ("CASSANDRA_WRITE_CONSISTENCY_LEVEL", "ALL"),
        ("CASSANDRA_LOCAL_DC", "dc1"),
    ]);
    let spec = CassandraConfigSpec {
        port: Some(9043),
        ..Default::default()
    };
    let c = CassandraConfig::resolve(&spec, &env).unwrap();
    assert_eq!(c.hosts, s(&["a:9043", "b:9999", "c:9043"]));
    assert_eq!(c.keyspace, "from_env");
    assert_eq!(c.local_dc.as_deref(), Some("dc1"));
    assert_eq!(c.credentials, Some(("u".to_string(), "p".to_string())));
    assert_eq!(c.read_consistency, Consistency::Quorum);
    assert_eq!(c.write_consistency, Consistency::All);
}

#[test]
fn resolve_spec_wins_over_env() {
    let env = env_of(&[
        ("CASSANDRA_HOST", "envhost"),
        ("CASSANDRA_KEYSPACE", "from_env"),
        ("CASSANDRA_USERNAME", "envuser"),
        ("CASSANDRA_PASSWORD", "envpass"),
        ("CASSANDRA_READ_CONSISTENCY_LEVEL", "ONE"),
        ("CASSANDRA_WRITE_CONSISTENCY_LEVEL", "ONE"),
        ("CASSANDRA_LOCAL_DC", "envdc"),
    ]);
    let spec = CassandraConfigSpec {
        hosts: Some(OneOrMany::Many(s(&["h1,h2", "h3:1"]))),
        keyspace: Some("ks".into()),
        local_dc: Some("dc".into()),
        username: Some("user".into()),
        password: Some("pass".into()),
        read_consistency: Some("two".into()),
        write_consistency: Some("each_quorum".into()),
        create_keyspace: true,
        ..Default::default()
    };
    let c = CassandraConfig::resolve(&spec, &env).unwrap();
    assert_eq!(c.hosts, s(&["h1:9042", "h2:9042", "h3:1"]));
    assert_eq!(c.keyspace, "ks");
    assert_eq!(c.local_dc.as_deref(), Some("dc"));
    assert_eq!(c.credentials, Some(("user".to_string(), "pass".to_string())));
    assert_eq!(c.read_consistency, Consistency::Two);
    assert_eq!(c.write_consistency, Consistency::EachQuorum);
    assert!(c.create_keyspace);
}

#[test]
fn resolve_user_without_password_has_no_credentials() {
    let spec = CassandraConfigSpec {
        keyspace: Some("ks".into()),
        username: Some("user".into()),
        ..Default::default()
    };
    assert_eq!(CassandraConfig::resolve(&spec, &no_env).unwrap().credentials, None);
}

#[test]
fn resolve_errors() {
    assert_eq!(
        err(CassandraConfig::resolve(&CassandraConfigSpec::default(), &no_env)),
        spec_msg(
            "cassandra.keyspace",
            "no keyspace: set `cassandra.keyspace` or CASSANDRA_KEYSPACE"
        )
    );
    assert_eq!(
        err(CassandraConfig::resolve(
            &CassandraConfigSpec::default(),
            &env_of(&[("CASSANDRA_KEYSPACE", "bad-ks")])
        )),
        spec_msg("cassandra.keyspace", "`bad-ks` is not a valid keyspace name")
    );
    let spec = CassandraConfigSpec {
        keyspace: Some("ks".into()),
        read_consistency: Some("most".into()),
        ..Default::default()
    };
    assert_eq!(
        err(CassandraConfig::resolve(&spec, &no_env)),
        spec_msg("cassandra.read_consistency", "unknown consistency level `MOST`")
    );
    let spec = CassandraConfigSpec {
        keyspace: Some("ks".into()),
        ..Default::default()
    };
    assert_eq!(
        err(CassandraConfig::resolve(
            &spec,
            &env_of(&[("CASSANDRA_WRITE_CONSISTENCY_LEVEL", "serial")])
        )),
        spec_msg("cassandra.write_consistency", "unknown consistency level `SERIAL`")
    );
}

#[test]
fn every_consistency_level() {
    let cases = [
        ("any", Consistency::Any),
        ("one", Consistency::One),
        ("two", Consistency::Two),
        ("three", Consistency::Three),
        ("quorum", Consistency::Quorum),
        ("all", Consistency::All),
        ("local_quorum", Consistency::LocalQuorum),
        ("each_quorum", Consistency::EachQuorum),
        ("Local_One", Consistency::LocalOne),
    ];
    for (name, want) in cases {
        assert_eq!(consistency("p", name).unwrap(), want, "{name}");
    }
}

#[test]
fn password_never_in_debug() {
    let spec = CassandraConfigSpec {
        keyspace: Some("ks".into()),
        username: Some("user".into()),
        password: Some("s3cr3t-pw".into()),
        ..Default::default()
    };
    let c = CassandraConfig::resolve(&spec, &no_env).unwrap();
    let want = "CassandraConfig { hosts: [\"127.0.0.1:9042\"], keyspace: \"ks\", local_dc: None, \
                tls_ca_file: None, user: Some(\"user\"), .. }";
    assert_eq!(format!("{c:?}"), want);
    assert_eq!(
        format!("{:?}", CassandraOnlineStore::new(c)),
        format!("CassandraOnlineStore {{ config: {want} }}")
    );
}

#[test]
fn key_predicates() {
    assert_eq!(key_predicate(&s(&["id"])), "\"id\" = ?");
    assert_eq!(key_predicate(&s(&["a", "b\"c"])), "\"a\" = ? AND \"b\"\"c\" = ?");
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn bind_key_typed_in_key_order() {
    let types = vec![
        ("id".to_string(), "bigint".to_string()),
        ("n".to_string(), "int".to_string()),
        ("s".to_string(), "smallint".to_string()),
        ("d".to_string(), "double".to_string()),
        ("f".to_string(), "float".to_string()),
        ("b".to_string(), "boolean".to_string()),
        ("name".to_string(), "varchar".to_string()),
    ];
    let keys = s(&["id", "n", "s", "d", "f", "b", "name", "untyped"]);
    let values = bind_key(
        &keys,
        &kv(&[
            ("untyped", "u"),
            ("name", "ana"),
            ("b", "true"),
            ("f", "1.5"),
            ("d", "-2.25"),
            ("s", "7"),
            ("n", "-3"),
            ("id", "9000000000"),
        ]),
        &types,
    )
    .unwrap();
    assert_eq!(
        values,
        vec![
            CqlValue::BigInt(9_000_000_000),
            CqlValue::Int(-3),
            CqlValue::SmallInt(7),
            CqlValue::Double(-2.25),
            CqlValue::Float(1.5),
            CqlValue::Boolean(true),
            CqlValue::Text("ana".into()),
            CqlValue::Text("u".into()),
        ]
    );
}

#[test]
fn bind_key_errors() {
    let types = vec![
        ("id".to_string(), "bigint".to_string()),
        ("flag".to_string(), "boolean".to_string()),
    ];
    let keys = s(&["id", "flag"]);
    assert_eq!(
        err(bind_key(&keys, &kv(&[("id", "1")]), &types)),
        spec_msg("--key", "missing key `flag`; the keys are: id, flag")
    );
    assert_eq!(
        err(bind_key(
            &keys,
            &kv(&[("id", "1"), ("flag", "true"), ("other", "x")]),
            &types
        )),
        spec_msg("--key", "`other` is not a key; the keys are: id, flag")
    );
    assert_eq!(
        err(bind_key(&keys, &kv(&[("id", "one"), ("flag", "true")]), &types)),
        spec_msg("--key", "`one` is not a valid Int64 for key `id`")
    );
    assert_eq!(
        err(bind_key(&keys, &kv(&[("id", "1"), ("flag", "yes")]), &types)),
        spec_msg("--key", "`yes` is not a valid Boolean for key `flag`")
    );
    assert_eq!(
        err(parse_key("s", "70000", &DataType::Int16)),
        spec_msg("--key", "`70000` is not a valid Int16 for key `s`")
    );
}

#[test]
fn arrow_types_of_cql() {
    assert_eq!(arrow_type("bigint"), DataType::Int64);
    assert_eq!(arrow_type("counter"), DataType::Int64);
    assert_eq!(arrow_type("int"), DataType::Int32);
    assert_eq!(arrow_type("smallint"), DataType::Int16);
    assert_eq!(arrow_type("double"), DataType::Float64);
    assert_eq!(arrow_type("float"), DataType::Float32);
    assert_eq!(arrow_type("boolean"), DataType::Boolean);
    assert_eq!(
        arrow_type("timestamp"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(arrow_type("date"), DataType::Date32);
    assert_eq!(arrow_type("text"), DataType::Utf8);
    assert_eq!(arrow_type("uuid"), DataType::Utf8);
    assert_eq!(arrow_type("list<list<int>>"), list_of(list_of(DataType::Int32)));
}
