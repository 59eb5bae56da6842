//! Loading user check files: what loads, and every error at its place.

use super::file::valid_id;
use super::*;

fn one(text: &str) -> Result<UserCheck, String> {
    load_one(
        "c.toml",
        text,
        Catalog::builtin(),
        &BTreeSet::new(),
        &BTreeSet::new(),
    )
}

const LATE: &str = "id = \"site.late-runs\"\ntitle = \"At most 100 late\"\nrequires = [\"db.schema\"]\n\
    [sql]\nquery = \"SELECT count(*)::int AS late FROM flow_run\"\nexpect = \"rows[0].late <= 100\"\n\
    message = \"string(rows[0].late) + ' flow runs are late'\"\n";

#[test]
fn a_good_check_loads() {
    let c = one(LATE).unwrap();
    assert_eq!(c.spec.id, "site.late-runs");
    assert_eq!(c.spec.area, "site");
    assert!(matches!(c.probe, Probe::Sql(ref q) if q.starts_with("SELECT count(*)")));
}

#[test]
fn bad_files_name_the_place() {
    for (text, want) in [
        (
            "id = \"x\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
            "c.toml:1:6: id \"x\" is not `area.name`",
        ),
        (
            "id = \"db.password\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
            "is a built-in check's",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\nbogus = 1\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
            "c.toml:3:1: unknown field `bogus`",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1\"\nexpect = \"rows[0] <=\"\n",
            "c.toml:5:10: expect is not a CEL expression",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"DELETE FROM tenant\"\nexpect = \"true\"\n",
            "c.toml:4:9: the query is not a SELECT: user checks may only read",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT 1; DELETE FROM tenant\"\nexpect = \"true\"\n",
            "holds 2 statements",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"WITH d AS (DELETE FROM tenant RETURNING *) SELECT * FROM d\"\nexpect = \"true\"\n",
            "writes",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[sql]\nquery = \"SELECT * FROM tenant FOR UPDATE\"\nexpect = \"true\"\n",
            "locks rows",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\nrequires = [\"db.schemma\"]\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n",
            "c.toml:3:13: requires \"db.schemma\", which is no check; did you mean db.schema",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n",
            "needs exactly one probe table",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[graphql]\nquery = \"mutation { create_tenant(input: {name: \\\"x\\\", slug: \\\"x\\\"}) { id } }\"\nexpect = \"true\"\n",
            "c.toml:4:9: the document is a mutation: user checks may only read",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[graphql]\nquery = \"subscription { hello }\"\nexpect = \"true\"\n",
            "subscription",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[http]\ntarget = \"db\"\nexpect = \"true\"\n",
            "c.toml:4:10: target \"db\" is not",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[http]\ntarget = \"ui\"\npath = \"http://evil.example.com/\"\nexpect = \"true\"\n",
            "is not a path",
        ),
        (
            "id = \"site.a\"\ntitle = \"t\"\n[values]\nexpect = \"true\"\n",
            "preflight only",
        ),
    ] {
        let e = one(text).unwrap_err();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn requires_reach_later_files_and_circles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, id: &str, req: &str| {
        std::fs::write(
            dir.path().join(name),
            format!("id = \"{id}\"\ntitle = \"t\"\nrequires = [{req}]\n[sql]\nquery = \"SELECT 1\"\nexpect = \"true\"\n"),
        )
        .unwrap();
    };
    file("a.toml", "site.a", "\"site.b\"");
    file("b.toml", "site.b", "\"db.schema\"");
    let paths = vec![dir.path().to_path_buf()];
    let loaded = load(&paths, Catalog::builtin()).unwrap();
    assert_eq!(loaded.len(), 2);
    file("b.toml", "site.b", "\"site.a\"");
    let e = load(&paths, Catalog::builtin()).unwrap_err();
    assert!(
        e.iter()
            .any(|e| e.contains("require each other in a circle: site.a → site.b → site.a")),
        "{e:?}"
    );
    file("b.toml", "site.b", "\"site.b\"");
    let e = load(&paths, Catalog::builtin()).unwrap_err();
    assert!(
        e.iter()
            .any(|e| e.contains("requires \"site.b\", which is no check")),
        "{e:?}"
    );
}

#[test]
fn ids() {
    assert!(valid_id("site.late-runs"));
    assert!(valid_id("team_a.x1"));
    assert!(!valid_id("Site.x") && !valid_id("site") && !valid_id("a.b.c") && !valid_id(".x"));
}
