//! `borboleta migrate apply`: brings the online tables in Cassandra, and the historical tables'
//! declared schemas, up to date with the specs, as Butterfree's `CassandraMigration` does, but
//! without its data-losing steps.
//!
//! The live schema is read from `system_schema` (the same reader as the writer's compatibility
//! check) and compared with the feature rows each spec produces:
//! - a missing keyspace is created only with `create_keyspace: true`;
//! - a missing table is created (`CREATE TABLE IF NOT EXISTS`, composite partition key);
//! - a missing column is added (`ALTER TABLE … ADD`);
//! - a column with another type, or other primary-key columns, is refused: dropping and adding a
//!   column under the same name would hide every older cell written with an event-time
//!   timestamp. With `allow_destructive` the table is dropped and created anew, empty;
//! - columns of the table that the spec does not have are kept (never dropped). With
//!   `write_to_entity` a feature set owns only its own columns.
//!
//! Historical tables get no DDL: new columns are reported and recorded in the table's schema
//! file (so the next run's schema check accepts them); a type change is refused.
//! Every problem of every spec is found before anything is applied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use borboleta_connectors::CassandraOnlineStore;
use borboleta_connectors::cassandra::{
    LiveColumn, add_column_cql, cql_columns, create_keyspace_cql, create_table_cql, drop_table_cql, same_cql_type,
};
use borboleta_connectors::historical::{schema_diff, table_dir, write_table_schema};
use borboleta_core::{FeatureSetPipelineSpec, SpecIssue, SpecIssues, WriterSpec};
use borboleta_engine::{Error, Result};

use crate::{PipelineOptions, build_pipeline};

/// How `migrate apply` behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct MigrateOptions {
    /// Print the statements, apply nothing.
    pub dry_run: bool,
    /// A retyped column or other keys: drop the table and create it anew (its rows are lost).
    pub allow_destructive: bool,
}

/// One thing to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// A CQL statement on the writer's Cassandra (index into the plan's stores).
    Cql {
        /// Which store.
        store: usize,
        /// The statement.
        cql: String,
    },
    /// Record the historical table's new schema.
    HistoricalSchema {
        /// The table folder.
        table: PathBuf,
        /// Its schema from now on.
        schema: SchemaRef,
    },
}

impl Action {
    /// The statement as printed (`--dry-run` and logs).
    pub fn text(&self) -> String {
        match self {
            Action::Cql { cql, .. } => format!("{cql};"),
            Action::HistoricalSchema { table, schema } => format!(
                "-- record the schema of {} ({} columns) in its {}",
                table.display(),
                schema.fields().len(),
                borboleta_connectors::historical::SCHEMA_FILE
            ),
        }
    }
}

/// What one writer of one spec needs.
#[derive(Debug, Clone)]
pub struct Step {
    /// The spec file.
    pub spec: PathBuf,
    /// The feature set.
    pub feature_set: String,
    /// `cassandra <keyspace>.<table>` or `historical <folder>`.
    pub target: String,
    /// What changes, in words.
    pub notes: Vec<String>,
    /// What to run, in order.
    pub actions: Vec<Action>,
}

/// Every step of every spec.
#[derive(Debug, Default)]
pub struct MigrationPlan {
    /// The steps in spec order, then writer order.
    pub steps: Vec<Step>,
    stores: Vec<Arc<CassandraOnlineStore>>,
}

/// The spec files of `path`: the file itself, or every `.yaml`/`.yml` under the folder
/// (recursively, sorted).
pub fn spec_files(path: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') || name == "feature_store" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                out.push(p);
            }
        }
        Ok(())
    }
    if path.is_dir() {
        let mut out = Vec::new();
        walk(path, &mut out).map_err(|e| Error::spec("PATH", format!("cannot list {}: {e}", path.display())))?;
        if out.is_empty() {
            return Err(Error::spec("PATH", format!("no .yaml spec under {}", path.display())));
        }
        Ok(out)
    } else if path.is_file() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(Error::spec("PATH", format!("{} does not exist", path.display())))
    }
}

/// The planner's view of one Cassandra table: live, or as the steps before left it.
type TableKey = (usize, String);

/// Plans the migration of `specs` (each with its file). Reads the live schemas; changes nothing.
/// Every problem of every spec is listed in one error.
pub async fn plan(specs: &[(PathBuf, FeatureSetPipelineSpec)], opts: MigrateOptions) -> Result<MigrationPlan> {
    let mut plan = MigrationPlan::default();
    let mut store_ids: HashMap<String, usize> = HashMap::new();
    // tables and keyspaces as the planned steps leave them (two feature sets writing one entity
    // table in one run see each other's columns)
    let mut tables: HashMap<TableKey, Option<Vec<LiveColumn>>> = HashMap::new();
    let mut keyspaces: HashMap<usize, bool> = HashMap::new();
    let mut problems: Vec<SpecIssue> = Vec::new();
    for (file, spec) in specs {
        let pipeline = build_pipeline(spec.clone(), &PipelineOptions::default()).await?;
        let schema = pipeline.schema();
        let fs = &spec.feature_set;
        let keys = borboleta_core::key_columns(fs);
        for (i, w) in spec.writers.iter().enumerate() {
            if w.debug_mode() {
                continue;
            }
            let at = |what: &str| format!("{}: writers[{i}]{what}", file.display());
            match w {
                WriterSpec::OnlineFeatureStore(o) => {
                    let Some(c) = &o.cassandra else {
                        continue; // the embedded store and Kafka have no schema to migrate
                    };
                    let mut config = crate::cassandra_config(spec, c)?;
                    // the plan creates the keyspace, if asked; connecting must not (dry runs)
                    config.create_keyspace = false;
                    let id = format!("{:?}", (&config.hosts, &config.keyspace, c.username.as_deref()));
                    let store = *store_ids.entry(id).or_insert_with(|| {
                        plan.stores.push(Arc::new(CassandraOnlineStore::new(config.clone())));
                        plan.stores.len() - 1
                    });
                    let cass = Arc::clone(&plan.stores[store]);
                    let keyspace = cass.keyspace().to_string();
                    let table = o.table_name(fs);
                    let mut step = Step {
                        spec: file.clone(),
                        feature_set: fs.name.clone(),
                        target: format!("cassandra {keyspace}.{table}"),
                        notes: Vec::new(),
                        actions: Vec::new(),
                    };
                    let cql = |cql: String| Action::Cql { store, cql };
                    let exists = match keyspaces.get(&store) {
                        Some(e) => *e,
                        None => cass.keyspace_exists().await?,
                    };
                    if !exists {
                        if c.create_keyspace {
                            step.notes.push(format!("keyspace {keyspace} created"));
                            step.actions.push(cql(create_keyspace_cql(&keyspace)?));
                        } else {
                            problems.push(SpecIssue::new(
                                at(".cassandra.keyspace"),
                                format!(
                                    "keyspace {keyspace} does not exist at {}: create it, or set \
                                     `create_keyspace: true` (local use)",
                                    cass.hosts()
                                ),
                            ));
                            continue;
                        }
                    }
                    keyspaces.insert(store, true);
                    let want = cql_columns(&schema)?;
                    let key = (store, table.clone());
                    let live = match tables.get(&key) {
                        Some(t) => t.clone(),
                        None if exists => cass.live_table(&table).await?,
                        None => None,
                    };
                    let planned = diff_table(
                        &keyspace,
                        &table,
                        live.as_deref(),
                        &want,
                        &keys,
                        o.write_to_entity,
                        opts.allow_destructive,
                    )?;
                    match planned {
                        Ok(d) => {
                            step.notes.extend(d.notes);
                            step.actions.extend(d.statements.into_iter().map(cql));
                            tables.insert(key, Some(d.after));
                        }
                        Err(why) => problems.push(SpecIssue::new(at(""), format!("{}: {why}", step.target))),
                    }
                    plan.steps.push(step);
                }
                WriterSpec::HistoricalFeatureStore(h) => {
                    let dir = table_dir(
                        &borboleta_connectors::BuildContext { spec, debug: false }.store_root(h.path.as_deref()),
                        &fs.entity,
                        &fs.name,
                    );
                    let mut step = Step {
                        spec: file.clone(),
                        feature_set: fs.name.clone(),
                        target: format!("historical {}", dir.display()),
                        notes: Vec::new(),
                        actions: Vec::new(),
                    };
                    match schema_diff(&dir, &schema)? {
                        None => step.notes.push("no files yet: the first run creates the table".into()),
                        Some(d) if !d.retyped.is_empty() => {
                            let what: Vec<String> = d
                                .retyped
                                .iter()
                                .map(|(n, have, want)| format!("`{n}` is {have} in the table, {want} in the spec"))
                                .collect();
                            problems.push(SpecIssue::new(
                                at(""),
                                format!(
                                    "{}: {}; the historical table's types are never changed: \
                                     rename the feature, or write a new table",
                                    step.target,
                                    what.join("; ")
                                ),
                            ));
                        }
                        Some(d) if !d.added.is_empty() => {
                            for (n, t) in &d.added {
                                step.notes.push(format!(
                                    "new column `{n}` ({t}): the files already written read it as null"
                                ));
                            }
                            step.actions.push(Action::HistoricalSchema {
                                table: dir.clone(),
                                schema: Arc::clone(&schema),
                            });
                        }
                        Some(_) => {}
                    }
                    plan.steps.push(step);
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Spec(SpecIssues(problems)));
    }
    Ok(plan)
}

/// A table's planned change.
#[derive(Debug)]
struct TableChange {
    statements: Vec<String>,
    notes: Vec<String>,
    /// The table's columns afterwards.
    after: Vec<LiveColumn>,
}

/// Compares the live table (or `None`) with the columns wanted. `Err(reason)` when the change
/// is refused.
fn diff_table(
    keyspace: &str,
    table: &str,
    live: Option<&[LiveColumn]>,
    want: &[(String, String)],
    keys: &[String],
    shared: bool,
    allow_destructive: bool,
) -> Result<std::result::Result<TableChange, String>> {
    let columns_of = |cols: &[(String, String)]| -> Vec<LiveColumn> {
        cols.iter()
            .map(|(n, t)| {
                let position = keys.iter().position(|k| k == n);
                LiveColumn {
                    name: n.clone(),
                    cql_type: t.clone(),
                    kind: if position.is_some() { "partition_key" } else { "regular" }.into(),
                    position: position.map_or(-1, |p| p as i32),
                }
            })
            .collect()
    };
    let Some(live) = live else {
        return Ok(Ok(TableChange {
            statements: vec![create_table_cql(keyspace, table, want, keys)?],
            notes: vec![format!("table created with {} columns", want.len())],
            after: columns_of(want),
        }));
    };
    let mut live_keys: Vec<&str> = live.iter().filter(|c| c.is_key()).map(|c| c.name.as_str()).collect();
    live_keys.sort_unstable();
    let mut want_keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    want_keys.sort_unstable();
    let mut conflicts = Vec::new();
    if live_keys != want_keys {
        conflicts.push(format!(
            "the table's primary key is ({}), the spec's keys are ({})",
            live_keys.join(", "),
            want_keys.join(", ")
        ));
    }
    let mut added = Vec::new();
    for (name, t) in want {
        match live.iter().find(|c| &c.name == name) {
            Some(c) if same_cql_type(&c.cql_type, t) => {}
            Some(c) => conflicts.push(format!("`{name}` is {} in the table, {t} in the spec", c.cql_type)),
            None => added.push((name.clone(), t.clone())),
        }
    }
    let extra: Vec<&LiveColumn> = live
        .iter()
        .filter(|c| !want.iter().any(|(n, _)| n == &c.name))
        .collect();
    if !conflicts.is_empty() {
        if !allow_destructive {
            return Ok(Err(format!(
                "{}; a column is never dropped and added again under the same name (Cassandra \
                 would hide every older cell written with an event-time timestamp): give the \
                 feature a new name, or run with --allow-destructive to drop the table and create \
                 it anew, empty",
                conflicts.join("; ")
            )));
        }
        // a new table: ours, plus the other feature sets' columns of a shared table
        let mut cols: Vec<(String, String)> = want.to_vec();
        if shared {
            cols.extend(extra.iter().map(|c| (c.name.clone(), c.cql_type.clone())));
        }
        return Ok(Ok(TableChange {
            statements: vec![
                drop_table_cql(keyspace, table)?,
                create_table_cql(keyspace, table, &cols, keys)?,
            ],
            notes: vec![
                format!("DESTRUCTIVE: {}", conflicts.join("; ")),
                "the table is dropped and created anew, empty: run a batch backfill of every \
                 feature set that writes it"
                    .into(),
            ],
            after: columns_of(&cols),
        }));
    }
    let mut change = TableChange {
        statements: Vec::new(),
        notes: Vec::new(),
        after: live.to_vec(),
    };
    for (name, t) in &added {
        change.statements.push(add_column_cql(keyspace, table, name, t)?);
        change.notes.push(format!("new column `{name}` {t}"));
        change.after.extend(columns_of(&[(name.clone(), t.clone())]));
    }
    if !shared {
        for c in extra {
            change.notes.push(format!(
                "`{}` is in the table but not in the spec: kept (never dropped)",
                c.name
            ));
        }
    }
    Ok(Ok(change))
}

/// Runs the plan's actions in order; `on_action` is called after each one.
pub async fn apply(plan: &MigrationPlan, mut on_action: impl FnMut(&Step, &Action)) -> Result<usize> {
    let mut n = 0;
    for step in &plan.steps {
        for action in &step.actions {
            match action {
                Action::Cql { store, cql } => plan.stores[*store].execute_ddl(cql).await?,
                Action::HistoricalSchema { table, schema } => write_table_schema(table, schema)?,
            }
            n += 1;
            on_action(step, action);
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(cols: &[(&str, &str, &str)]) -> Vec<LiveColumn> {
        cols.iter()
            .map(|(n, t, k)| LiveColumn {
                name: n.to_string(),
                cql_type: t.to_string(),
                kind: k.to_string(),
                position: 0,
            })
            .collect()
    }

    fn want(cols: &[(&str, &str)]) -> Vec<(String, String)> {
        cols.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
    }

    #[test]
    fn creates_adds_keeps_and_refuses() {
        let keys = vec!["id".to_string()];
        let w = want(&[
            ("id", "bigint"),
            ("timestamp", "timestamp"),
            ("a", "double"),
            ("b", "text"),
        ]);
        let created = diff_table("ks", "t", None, &w, &keys, false, false).unwrap().unwrap();
        assert_eq!(
            created.statements,
            vec![
                "CREATE TABLE IF NOT EXISTS \"ks\".\"t\" (\"id\" bigint, \"timestamp\" timestamp, \"a\" double, \"b\" text, PRIMARY KEY ((\"id\")))"
            ]
        );
        // Butterfree's table: `(id)` key, varchar, an old column, no `b`
        let l = live(&[
            ("id", "bigint", "partition_key"),
            ("timestamp", "timestamp", "regular"),
            ("a", "double", "regular"),
            ("old", "varchar", "regular"),
        ]);
        let added = diff_table("ks", "t", Some(&l), &w, &keys, false, false)
            .unwrap()
            .unwrap();
        assert_eq!(added.statements, vec!["ALTER TABLE \"ks\".\"t\" ADD \"b\" text"]);
        assert!(
            added.notes.iter().any(|n| n.contains("`old`") && n.contains("kept")),
            "{:?}",
            added.notes
        );
        // shared entity table: the other feature set's column is not ours to report
        let shared = diff_table("ks", "t", Some(&l), &w, &keys, true, false)
            .unwrap()
            .unwrap();
        assert!(!shared.notes.iter().any(|n| n.contains("`old`")));
        // retyped: refused, then destructive
        let w2 = want(&[("id", "bigint"), ("timestamp", "timestamp"), ("a", "text")]);
        let why = diff_table("ks", "t", Some(&l), &w2, &keys, false, false)
            .unwrap()
            .unwrap_err();
        assert!(why.contains("`a` is double in the table, text in the spec"), "{why}");
        let d = diff_table("ks", "t", Some(&l), &w2, &keys, true, true)
            .unwrap()
            .unwrap();
        assert_eq!(d.statements[0], "DROP TABLE IF EXISTS \"ks\".\"t\"");
        assert!(
            d.statements[1].contains("\"a\" text") && d.statements[1].contains("\"old\" varchar"),
            "{:?}",
            d.statements
        );
        // other keys
        let keys2 = vec!["id".to_string(), "region".to_string()];
        let w3 = want(&[("id", "bigint"), ("region", "text"), ("timestamp", "timestamp")]);
        let why = diff_table("ks", "t", Some(&l), &w3, &keys2, false, false)
            .unwrap()
            .unwrap_err();
        assert!(why.contains("primary key is (id)"), "{why}");
    }

    #[test]
    fn names_are_checked() {
        let keys = vec!["id".to_string()];
        let w = want(&[("id", "bigint")]);
        assert!(diff_table("ks", "bad-name", None, &w, &keys, false, false).is_err());
        assert!(diff_table("ks\"; DROP", "t", None, &w, &keys, false, false).is_err());
        let w = want(&[("id", "bigint"), ("we\"ird", "text")]);
        let c = diff_table("ks", "t", None, &w, &keys, false, false).unwrap().unwrap();
        assert!(c.statements[0].contains("\"we\"\"ird\" text"), "{:?}", c.statements);
    }
}
