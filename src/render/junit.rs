//! The JUnit XML report (quick-junit): one test case per check, its class name the check's area.
//! `fail` is a failure and `error` an error, each with the message and, in the body, the fix; `skip` is
//! skipped with its reason; `warn` passes, or fails under `--strict`, as the exit code does.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use crate::report::{CheckResult, Report, Status};

fn body(r: &CheckResult) -> String {
    let mut out = r.message.clone();
    if let Some(snippet) = r.location.as_ref().and_then(|l| l.snippet.as_ref()) {
        out.push_str("\n\n");
        out.push_str(snippet);
    }
    if let Some(fix) = &r.fix {
        out.push_str("\n\nfix:\n");
        out.push_str(fix);
    }
    out.push_str(&format!("\n\ndocs: {}", r.docs));
    out
}

fn case(r: &CheckResult, strict: bool) -> TestCase {
    let failing = |kind: NonSuccessKind, ty: &str| {
        let mut s = TestCaseStatus::non_success(kind);
        s.set_message(r.message.clone());
        s.set_type(ty);
        s.set_description(body(r));
        s
    };
    let status = match r.status {
        Status::Pass => TestCaseStatus::success(),
        Status::Warn if strict => failing(NonSuccessKind::Failure, "warn"),
        Status::Warn => TestCaseStatus::success(),
        Status::Fail => failing(NonSuccessKind::Failure, "fail"),
        Status::Error => failing(NonSuccessKind::Error, "error"),
        Status::Skip => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(r.message.clone());
            s
        }
    };
    let mut tc = TestCase::new(format!("{}: {}", r.id, r.title), status);
    tc.set_classname(format!("prefect-doctor.{}", r.area));
    tc.set_time(Duration::from_millis(r.duration_ms));
    if matches!(r.status, Status::Pass | Status::Warn) {
        // Passing cases keep their message (and a warning its fix) where CI shows test output.
        tc.set_system_out(if r.status == Status::Warn {
            format!("warning: {}", body(r))
        } else {
            r.message.clone()
        });
    }
    tc
}

/// One test suite for `report`, named `name`.
fn suite(report: &Report, name: String) -> TestSuite {
    let mut suite = TestSuite::new(name);
    for t in &report.targets {
        suite.add_property(Property::new(
            format!("target.{}", t.kind),
            format!("{} ({})", t.address, t.source),
        ));
    }
    for n in &report.notices {
        suite.add_property(Property::new("notice", n.clone()));
    }
    suite.add_test_cases(report.results.iter().map(|r| case(r, report.strict)));
    suite.set_time(Duration::from_millis(report.elapsed_ms));
    suite
}

fn document(junit: Junit) -> String {
    match junit.to_string() {
        Ok(mut s) => {
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
        Err(e) => format!("<!-- cannot write the JUnit report: {e} -->\n"),
    }
}

pub fn render(report: &Report) -> String {
    let mut junit = Junit::new("prefect-doctor");
    junit.add_test_suite(suite(report, format!("prefect-doctor {}", report.command)));
    junit.set_time(Duration::from_millis(report.elapsed_ms));
    document(junit)
}

/// Several releases: one test suite each, named `prefect-doctor check <name>`.
/// `not_diagnosed` (where, why): the contexts and releases the run could not list or read, each an
/// erroring test case of a suite `prefect-doctor check: not diagnosed`, so that a CI gate reading the
/// JUnit file sees them as the exit code does.
pub fn render_many<'a>(
    reports: impl IntoIterator<Item = (String, &'a Report)>,
    not_diagnosed: &[(String, String)],
) -> String {
    let mut junit = Junit::new("prefect-doctor");
    let mut longest = 0;
    for (name, report) in reports {
        longest = longest.max(report.elapsed_ms);
        junit.add_test_suite(suite(
            report,
            format!("prefect-doctor {} {name}", report.command),
        ));
    }
    if !not_diagnosed.is_empty() {
        let mut missing = TestSuite::new("prefect-doctor check: not diagnosed");
        missing.add_test_cases(not_diagnosed.iter().map(|(place, why)| {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(why.clone());
            status.set_type("not diagnosed");
            let mut tc = TestCase::new(place.clone(), status);
            tc.set_classname("prefect-doctor.fleet");
            tc
        }));
        junit.add_test_suite(missing);
    }
    junit.set_time(Duration::from_millis(longest));
    document(junit)
}
