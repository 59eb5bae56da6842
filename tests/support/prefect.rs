//! Seeds a database the way a Prefect Server install leaves it (extensions, Alembic's version table,
//! `public.tenant`, Hasura's `hdb_catalog`), with switches for each fault the doctor looks for.
#![allow(dead_code)]

use super::pg::PgServer;

/// The application user's password: a canary that must never appear in any output.
pub const CANARY: &str = "canary-Pa55w0rd-q7x9z";
pub const APP_USER: &str = "prefect";

#[derive(Clone)]
pub struct Seed {
    pub db: String,
    pub extensions: bool,
    /// The app user owns the database (and so has CREATE on it).
    pub app_owns_db: bool,
    pub schema: bool,
    pub tenant: bool,
    pub hdb_catalog: bool,
    /// Owner of schema hdb_catalog when not the app user.
    pub hdb_schema_owner: Option<String>,
    /// Owner of hdb_catalog.insert_event_log when not the app user.
    pub hdb_function_owner: Option<String>,
    pub db_timezone: Option<String>,
    pub role_timezone: Option<String>,
}

impl Seed {
    pub fn healthy(db: &str) -> Seed {
        Seed {
            db: db.to_string(),
            extensions: true,
            app_owns_db: true,
            schema: true,
            tenant: true,
            hdb_catalog: true,
            hdb_schema_owner: None,
            hdb_function_owner: None,
            db_timezone: Some("UTC".to_string()),
            role_timezone: None,
        }
    }
}

/// Creates the app role once per server.
pub fn create_app_role(pg: &PgServer) {
    pg.sql(
        "postgres",
        &format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_USER}') THEN \
             CREATE ROLE {APP_USER} LOGIN PASSWORD '{CANARY}'; END IF; END $$;"
        ),
    );
}

pub fn seed(pg: &PgServer, s: &Seed) {
    create_app_role(pg);
    let owner = if s.app_owns_db { APP_USER } else { "postgres" };
    pg.sql(
        "postgres",
        &format!("CREATE DATABASE {} OWNER {owner};", s.db),
    );
    let mut sql = String::new();
    if let Some(tz) = &s.db_timezone {
        sql.push_str(&format!(
            "ALTER DATABASE {} SET timezone TO '{tz}';\n",
            s.db
        ));
    }
    if let Some(tz) = &s.role_timezone {
        sql.push_str(&format!("ALTER ROLE {APP_USER} SET timezone TO '{tz}';\n"));
    }
    if s.extensions {
        sql.push_str("CREATE EXTENSION IF NOT EXISTS pgcrypto;\nCREATE EXTENSION IF NOT EXISTS \"pg_trgm\";\n");
    }
    for other in [&s.hdb_schema_owner, &s.hdb_function_owner]
        .into_iter()
        .flatten()
    {
        if other != "postgres" {
            sql.push_str(&format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{other}') THEN \
                 CREATE ROLE {other} NOLOGIN; END IF; END $$;\n"
            ));
        }
    }
    if s.schema {
        if !s.app_owns_db {
            sql.push_str(&format!("GRANT CREATE ON SCHEMA public TO {APP_USER};\n"));
        }
        sql.push_str(&format!(
            "SET ROLE {APP_USER};\n\
             CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY);\n\
             INSERT INTO public.alembic_version VALUES ('ac5747fb571c');\n\
             CREATE TABLE public.tenant (\n\
               id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n\
               created timestamptz NOT NULL DEFAULT now(),\n\
               updated timestamptz NOT NULL DEFAULT now(),\n\
               name text NOT NULL, slug text NOT NULL UNIQUE,\n\
               info jsonb DEFAULT '{{}}', settings jsonb NOT NULL DEFAULT '{{}}');\n\
             CREATE TABLE public.agent (\n\
               id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n\
               created timestamptz NOT NULL DEFAULT now(),\n\
               updated timestamptz NOT NULL DEFAULT now(),\n\
               tenant_id uuid NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,\n\
               agent_config_id uuid, name varchar, type varchar, core_version varchar,\n\
               labels jsonb NOT NULL DEFAULT '[]', last_queried timestamptz DEFAULT now());\n\
             CREATE TABLE public.flow_run (\n\
               id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n\
               created timestamptz NOT NULL DEFAULT now(),\n\
               updated timestamptz NOT NULL DEFAULT now(),\n\
               tenant_id uuid NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,\n\
               flow_id uuid, name varchar, state varchar, state_timestamp timestamptz,\n\
               scheduled_start_time timestamptz NOT NULL DEFAULT now(),\n\
               labels jsonb NOT NULL DEFAULT '[]',\n\
               agent_id uuid REFERENCES public.agent (id) ON DELETE SET NULL);\n\
             RESET ROLE;\n"
        ));
        if s.tenant {
            sql.push_str("INSERT INTO public.tenant (name, slug) VALUES ('default', 'default');\n");
        }
    }
    if s.hdb_catalog {
        let schema_owner = s
            .hdb_schema_owner
            .clone()
            .unwrap_or_else(|| APP_USER.to_string());
        let fn_owner = s
            .hdb_function_owner
            .clone()
            .unwrap_or_else(|| APP_USER.to_string());
        sql.push_str(&format!(
            "CREATE SCHEMA hdb_catalog AUTHORIZATION {schema_owner};\n\
             CREATE FUNCTION hdb_catalog.insert_event_log(schema_name text, table_name text, trigger_name text, op text, row_data json)\n\
               RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RETURN ''; END $f$;\n\
             ALTER FUNCTION hdb_catalog.insert_event_log(text, text, text, text, json) OWNER TO {fn_owner};\n\
             CREATE FUNCTION hdb_catalog.check_violation(msg text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN RETURN true; END $f$;\n\
             ALTER FUNCTION hdb_catalog.check_violation(text) OWNER TO {APP_USER};\n"
        ));
    }
    if !sql.is_empty() {
        pg.sql(&s.db, &sql);
    }
}
