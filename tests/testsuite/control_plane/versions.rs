//! `versions.skew` with every source real: the chart's release as real Helm installs it (Hasura's
//! image from `hasura.image.*`) and its Hasura pod on the kubelet's Node, `hdb_catalog` in Hasura
//! 1.3's and 2.x's layouts and the `agent` table in the release's real PostgreSQL, and Apollo's `api
//! { core_version }`, the database and Apollo behind real port-forwards.

use super::*;

const ID: &str = "versions.skew";

/// The release with Hasura's image tag `hasura_tag`, its hdb_catalog in `layout` ("2": hdb_metadata,
/// "1": hdb_table), and the agents `(name, Prefect version, polled ago)`.
fn release(
    cp: &ControlPlane,
    layout: &str,
    hasura_tag: &str,
    agents: &[(&str, &str, &str)],
) -> Running {
    let tag = format!("hasura.image.tag={hasura_tag}");
    let r = running_release(
        cp,
        "versions",
        Scenario {
            helm: &["--set", &tag],
            ..Scenario::default()
        },
    );
    r.pg.sql(
        "prefect",
        if layout == "2" {
            "CREATE TABLE hdb_catalog.hdb_metadata (id integer PRIMARY KEY, metadata json NOT NULL, resource_version integer NOT NULL DEFAULT 1);"
        } else {
            "CREATE TABLE hdb_catalog.hdb_table (table_schema text, table_name text, configuration jsonb, is_system_defined boolean, is_enum boolean);"
        },
    );
    for (name, version, ago) in agents {
        r.pg.sql(
            "prefect",
            &format!(
                "INSERT INTO agent (tenant_id, name, type, core_version, labels, last_queried) \
                 VALUES ((SELECT id FROM tenant LIMIT 1), '{name}', 'KubernetesAgent', '{version}', \
                 '[]', now() - interval '{ago}');"
            ),
        );
    }
    r
}

fn skew(r: &Running) -> Value {
    let (_, report, _) = doctor(&r.kubeconfig, &["--only", ID]);
    result(&report, ID)
}

fn says(r: &Value, parts: &[&str]) {
    let m = r["message"].as_str().unwrap_or("");
    for p in parts {
        assert!(m.contains(p), "{p}: {m}");
    }
}

#[test]
fn parts_in_step_and_hasura_out_of_step_on_a_real_cluster() {
    let cp = control_plane!();
    // An agent that stopped long ago is not judged.
    let agents = [
        ("k8s-agent", "1.4.0", "5 seconds"),
        ("retired", "0.14.22", "3 hours"),
    ];
    let r = release(cp, "2", "v2.1.1", &agents);
    let res = skew(&r);
    assert_eq!(res["status"], "pass", "{res}");
    says(
        &res,
        &[
            "Hasura hasura/graphql-engine:v2.1.1 is the 2.x the chart expects",
            "Hasura 2.x's hdb_catalog (hdb_metadata) fits Hasura 2.x",
            "1 live agent on Prefect 1.4.0 or newer",
        ],
    );
    // Hasura 1.3 (`--set hasura.image.tag=v1.3.3`) on a chart built for 2.x, on a catalog 2.x
    // already wrote.
    let r = release(cp, "2", "v1.3.3", &agents);
    let res = skew(&r);
    assert_eq!(res["status"], "fail", "{res}");
    says(
        &res,
        &[
            "Hasura runs hasura/graphql-engine:v1.3.3, but chart prefect-server 2022.12.22 of \
             release prefect was built for Hasura 2.x (hasura/graphql-engine:v2.1.1)",
            "Hasura 1.x runs on Hasura 2.x's hdb_catalog",
        ],
    );
    assert!(
        res["fix"]
            .as_str()
            .is_some_and(|f| f.contains("--set hasura.image.tag=v2.1.1")),
        "{res}"
    );
}

#[test]
fn a_catalog_hasura_2_did_not_upgrade_and_old_agents_on_a_real_cluster() {
    let cp = control_plane!();
    let r = release(
        cp,
        "1",
        "v2.1.1",
        &[
            ("old-agent", "0.15.9", "20 seconds"),
            ("new-agent", "1.4.1", "10 seconds"),
        ],
    );
    let res = skew(&r);
    assert_eq!(res["status"], "fail", "{res}");
    says(
        &res,
        &[
            "Hasura 2.x runs, but the database holds Hasura 1.3's hdb_catalog (hdb_table, no \
             hdb_metadata): Hasura has not upgraded it",
            "1 live agent is older than the server's Prefect Core 1.4.0: old-agent on Prefect 0.15.9",
        ],
    );
    // The first finding's fix: the catalog's owners.
    let fix = res["fix"].as_str().unwrap_or("");
    assert!(fix.contains("hasura.function-owner"), "{fix}");
    assert!(
        fix.contains(&format!(
            "kubectl rollout restart -n {} deploy/prefect-hasura",
            r.ns
        )),
        "{fix}"
    );
}
