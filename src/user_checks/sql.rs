//! A user check's `[sql]` query, validated when it is loaded: exactly one statement that only reads
//! (no data-modifying WITH, no row locks) and calls no function that changes the session or reaches
//! outside the database's rows ([`FORBIDDEN_FUNCTIONS`]). At run time it also runs read-only, in a
//! transaction rolled back, on a session of its own (`PgProbe::isolated`).

/// Rows a user query may return; past this the finding says the cap was hit.
pub const MAX_ROWS: usize = 1000;

/// The query as one read-only statement, or why not.
pub(super) fn one_select(sql: &str) -> Result<String, String> {
    use sqlparser::{
        ast::{SetExpr, Statement},
        dialect::PostgreSqlDialect,
        parser::Parser,
    };
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| format!("the query is not SQL PostgreSQL would parse: {e}"))?;
    let [Statement::Query(q)] = statements.as_slice() else {
        return Err(match statements.len() {
            0 => "the query is empty".to_string(),
            1 => "the query is not a SELECT: user checks may only read".to_string(),
            n => format!("the query holds {n} statements; give exactly one SELECT"),
        });
    };
    // A body that reads: a SELECT, a UNION …, VALUES, or a parenthesised query.
    let reads = |body: &SetExpr| {
        matches!(
            body,
            SetExpr::Select(_)
                | SetExpr::SetOperation { .. }
                | SetExpr::Values(_)
                | SetExpr::Query(_)
        )
    };
    // A data-modifying WITH (`WITH d AS (DELETE …) SELECT …`) writes.
    if let Some(with) = &q.with
        && with.cte_tables.iter().any(|c| !reads(&c.query.body))
    {
        return Err(
            "the query's WITH holds a statement that writes: user checks may only read".to_string(),
        );
    }
    if !reads(&q.body) {
        return Err("the query is not a SELECT: user checks may only read".to_string());
    }
    if !q.locks.is_empty() {
        return Err(
            "the query locks rows (FOR UPDATE/SHARE): user checks may only read".to_string(),
        );
    }
    if let Some(f) = forbidden_function(&statements) {
        return Err(format!(
            "the query calls {f}(), which changes the session or reaches outside the database's \
             rows; user checks may not (docs/user-checks.md lists what is refused)"
        ));
    }
    Ok(q.to_string())
}

/// Functions a user query may not call: they change the session or the server (settings, locks,
/// other backends, the configuration), reach outside the database's rows (files, other servers,
/// large objects, notifications), or run SQL given as text (which would escape this list). Writes
/// (`nextval`, an INSERT in a CTE) are PostgreSQL's to refuse: the query runs read-only.
/// Matched on the function's own name (any schema), case-insensitively.
pub const FORBIDDEN_FUNCTIONS: &[&str] = &[
    "set_config",
    "pg_advisory_*",
    "pg_try_advisory_*",
    "dblink*",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_logical_emit_message",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_*",
    "pg_stat_file",
    "pg_file_*",
    "lo_*",
    "pg_notify",
    "pg_sleep*",
    "query_to_xml*",
    "cursor_to_xml*",
    "table_to_xml*",
    "schema_to_xml*",
    "database_to_xml*",
    "pg_import_system_collations",
];

fn forbidden_function(statements: &[sqlparser::ast::Statement]) -> Option<String> {
    let matches = |name: &str| {
        let n = name.trim_matches('"').to_ascii_lowercase();
        FORBIDDEN_FUNCTIONS
            .iter()
            .any(|f| match f.strip_suffix('*') {
                Some(prefix) => n.starts_with(prefix),
                None => n == *f,
            })
    };
    let last = |name: &sqlparser::ast::ObjectName| {
        name.0.last().map(|p| p.to_string()).unwrap_or_default()
    };
    let mut found = None;
    for st in statements {
        if let Some(f) = forbidden_in(st, &matches, &last) {
            found = Some(f);
            break;
        }
    }
    found.map(|n| crate::untrusted::line(&n, 80))
}

fn forbidden_in(
    statement: &sqlparser::ast::Statement,
    matches: &dyn Fn(&str) -> bool,
    last: &dyn Fn(&sqlparser::ast::ObjectName) -> String,
) -> Option<String> {
    use std::ops::ControlFlow;
    let mut found = None;
    let _ = sqlparser::ast::visit_expressions(statement, |e| {
        if let sqlparser::ast::Expr::Function(f) = e {
            let n = last(&f.name);
            if matches(&n) {
                found = Some(n);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    if found.is_none() {
        // A function in FROM (`FROM dblink(…)`, `FROM pg_ls_dir(…)`) is a relation to the visitor.
        let _ = sqlparser::ast::visit_relations(statement, |r| {
            let n = last(r);
            if matches(&n) {
                found = Some(n);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
    }
    found
}
