//! `literal_eval` and `str()` against what Python 3.11 gives.

use super::*;

fn s(text: &str) -> String {
    string_to_type(text).py_str()
}

#[test]
fn literal_eval_as_python_3_11() {
    // Each pair was read off Python 3.11's `str(ast.literal_eval(text))`.
    for (text, want) in [
        ("\n1", "1"),
        ("1\n", "1"),
        (" 1", "1"),
        ("\t1", "1"),
        ("1 # c", "1"),
        ("1_000", "1000"),
        ("0x_1f", "31"),
        ("00", "0"),
        ("0_0", "0"),
        ("1e400", "inf"),
        ("-1e400", "-inf"),
        ("1.", "1.0"),
        (".5", "0.5"),
        ("5j", "5j"),
        ("1+2j", "(1+2j)"),
        ("-1-2j", "(-1-2j)"),
        ("...", "Ellipsis"),
        ("'a' 'b'", "ab"),
        ("b'x'", "b'x'"),
        ("u'x'", "x"),
        ("set()", "set()"),
        ("{}", "{}"),
        ("{1,1.0,True}", "{1}"),
        ("{'a':1,'a':2}", "{'a': 2}"),
        ("1,", "(1,)"),
        ("()", "()"),
        ("(1)", "1"),
        ("[1,]", "[1]"),
        ("None", "None"),
        ("True", "True"),
        ("r'\\n'", "\\n"),
        ("'\\x41'", "A"),
        ("'''a\nb'''", "a\nb"),
        ("(1,\n2)", "(1, 2)"),
        ("0o17", "15"),
        ("-0.0", "-0.0"),
        ("1e16", "1e+16"),
        ("1e15", "1000000000000000.0"),
        ("123456789.123456789", "123456789.12345679"),
        ("0.0001", "0.0001"),
        ("0.00001", "1e-05"),
        ("1.5e-5", "1.5e-05"),
        ("'\\q'", "\\q"),
        ("-(1)", "-1"),
        ("+5", "5"),
        ("[1, 'a\"b']", "[1, 'a\"b']"),
        ("'\\xa0'", "\u{a0}"),
        ("{1: [2, (3,)]}", "{1: [2, (3,)]}"),
        ("\x0c1", "1"),
        ("1 ", "1"),
        ("\\\n1", "1"),
        ("0xFFFFFFFFFFFFFFFFFFFF", "1208925819614629174706175"),
        ("true", "True"),
        ("FALSE", "False"),
    ] {
        assert_eq!(s(text), want, "{text:?}");
    }
}

#[test]
fn not_literals_stay_strings() {
    for text in [
        "\n 1",
        "1\n2",
        "01",
        "1+-2j",
        "--5",
        "-True",
        "f'x'",
        "{[1]:2}",
        "1 if 1 else 2",
        "'\\N{DASH}'",
        "1\\\n",
        "0b2",
        "1e",
        "1_",
        "1;",
        "[1,,]",
        "http://localhost",
        "localhost:4200",
        "test-password",
        "",
        "abc",
        "1 2",
        "(1 2)",
        "{1:}",
        "{1:2,3}",
        "[",
        "]",
        "'unterminated",
        "${server.host}",
    ] {
        assert_eq!(string_to_type(text), Py::Str(text.to_string()), "{text:?}");
    }
}

#[test]
fn reprs_as_python() {
    assert_eq!(repr_str("it's"), "\"it's\"");
    assert_eq!(repr_str("a'b\"c"), "'a\\'b\"c'");
    assert_eq!(repr_str("tab\there\u{1b}"), "'tab\\there\\x1b'");
    assert_eq!(repr_float(0.1), "0.1");
    assert_eq!(repr_float(1e22), "1e+22");
    assert_eq!(repr_float(123.0), "123.0");
    assert_eq!(repr_float(-2.5e-7), "-2.5e-07");
}

#[test]
fn nesting_is_bounded_without_recursion() {
    let deep = "[".repeat(199) + &"]".repeat(199);
    assert!(matches!(string_to_type(&deep), Py::List(_)));
    let too_deep = "[".repeat(200) + &"]".repeat(200);
    assert_eq!(string_to_type(&too_deep), Py::Str(too_deep.clone()));
    let huge = "[".repeat(100_000);
    assert_eq!(string_to_type(&huge), Py::Str(huge.clone()));
    assert_eq!(string_to_type(&"9".repeat(5000)), Py::Str("9".repeat(5000)));
}
