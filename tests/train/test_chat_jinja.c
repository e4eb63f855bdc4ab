/* test_chat_jinja.c - tr_jinja beyond what chat_ref.sh compares with @huggingface/jinja:
 * Python's semantics where that reference departs from transformers (strip with chars),
 * whitespace control and trim/lstrip_blocks on small templates, and every refusal naming
 * the template's line:col instead of crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "tr_jinja.h"

static const tr_chat_msg CONV[] = {{"system", "S"}, {"user", "hi"}, {"assistant", "yo"}};

/* Renders src over CONV; returns the output (caller frees) or NULL with d->msg set. */
static char *render(const char *src, int gen, mu_diag *d)
{
    int err = 0;
    tr_jinja *t = tr_jinja_parse(src, strlen(src), &err, d);
    if (!t) {
        assert_int_equal(err, MU_ERR_FORMAT);
        return NULL;
    }
    char *out = NULL;
    size_t n = 0;
    int rc = tr_jinja_render_chat(t, CONV, 3, gen, "<s>", "</s>", &out, &n, d);
    tr_jinja_free(t);
    if (rc) {
        assert_int_equal(rc, MU_ERR_FORMAT);
        assert_null(out);
        return NULL;
    }
    assert_int_equal(strlen(out), n);
    return out;
}

static void expect(const char *src, const char *want)
{
    mu_diag d = {{0}};
    char *out = render(src, 1, &d);
    if (!out)
        fail_msg("%s: %s", src, d.msg);
    assert_string_equal(out, want);
    free(out);
}

static void expect_error(const char *src, const char *want)
{
    mu_diag d = {{0}};
    char *out = render(src, 1, &d);
    if (out)
        fail_msg("%s rendered '%s'", src, out);
    if (!strstr(d.msg, want))
        fail_msg("%.60s: '%s' does not say '%s'", src, d.msg, want);
}

static void test_python_semantics(void **state)
{
    (void)state;
    /* str.lstrip('\n') strips newlines only (@huggingface/jinja strips all white space). */
    expect("{{ '\\n\\n\xe3\x80\x80x'.lstrip('\\n') }}", "\xe3\x80\x80x");
    expect("{{ 'xxaxx'.strip('x') }}|{{ '  a '.rstrip() }}|", "a|  a|");
    expect("{{ 'a</think>b</think>c'.split('</think>')[-1] }}{{ ' p  q '.split()|length }}", "c2");
    expect("{{ messages[::-1][0].content }}{{ messages[1:]|length }}{{ messages[-5:1]|length }}",
           "yo21");
    expect("{{ -7 // 2 }} {{ -7 % 2 }} {{ 7 % -2 }}", "-4 1 -1");
    expect("{{ 'a' ~ 1 ~ true ~ none }}", "a1TrueNone");
    expect("{{ x is defined }}{{ bos_token is string }}{{ none is none }}{{ 3 is odd }}",
           "FalseTrueTrueTrue");
}

static void test_lists_not_printable(void **state)
{
    (void)state;
    expect_error("{{ [1, 2] + [3] }}", "cannot turn a list into a string");
}

static void test_scopes_and_namespace(void **state)
{
    (void)state;
    /* set inside a loop does not leak out; a namespace's attribute does. */
    expect("{% set x = 1 %}{% set ns = namespace(y=1) %}{% for m in messages %}{% set x = 2 %}"
           "{% set ns.y = ns.y + loop.index %}{% endfor %}{{ x }} {{ ns.y }}",
           "1 7");
    expect("{% for m in messages %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
           "{{ loop.revindex }},{% endfor %}",
           "0TrueFalse3,1FalseFalse2,2FalseTrue1,");
    expect("{% if add_generation_prompt %}G{% elif 1 %}E{% else %}N{% endif %}", "G");
    expect("{{ {'a': 'b'}.get('a') }}{{ {'a': 1}.get('z', 'd') }}{{ 'b' in {'b': 1} }}", "bdTrue");
    expect("{{ 'x' if 0 else 'y' }}{{ 'z' if 1 }}{{ 'q' if 0 }}", "yz");
}

static void test_whitespace(void **state)
{
    (void)state;
    /* trim_blocks eats the newline after %}, lstrip_blocks the indent before {%; {{ }} keep
     * both; '-' strips all white space on its side; one trailing newline is dropped. */
    expect("a\n  {% if 1 %}\nb\n  {% endif %}\nc\n", "a\nb\nc");
    expect("a\n  {{ 'b' }}\nc", "a\n  b\nc");
    expect("a \n\t{%- if 1 -%} \n b {{- ' c ' -}} \n d{# x #}\ne{#- y -#}  f{% endif %}",
           "ab c def");
    expect("x\n\n", "x\n");
}

static void test_refusals(void **state)
{
    (void)state;
    expect_error("ok\n  {% macro f() %}{% endmacro %}", "line 2:6: unsupported tag 'macro'");
    expect_error("{{ x | wordcount }}", "line 1:8: unsupported filter 'wordcount'");
    expect_error("{{ x is callable }}", "line 1:9: unsupported test 'callable'");
    expect_error("{% if 1 %}open", "missing {% endif %}");
    expect_error("{{ 'abc }}", "line 1:4: unterminated string");
    expect_error("{{ 1.5 }}", "floating-point numbers are not supported");
    expect_error("{{ a b }}", "expected '}}'");
    expect_error("{{ 'a' + 1 }}", "unsupported operands for +");
    expect_error("\n{{ raise_exception('roles must alternate') }}",
                 "line 2:19: the template raised an exception: roles must alternate");
    expect_error("{{ x.y }}", "attribute 'y' of a undefined value");
    expect_error("{{ 1 // 0 }}", "division by zero");
    expect_error("{% set n = 1 %}{% set n.a = 2 %}", "'n' is not a namespace()");
    expect_error("{{ lipsum() }}", "unsupported function 'lipsum'");
    char deep[1200];
    memset(deep, '(', sizeof deep);
    memcpy(deep, "{{ ", 3);
    memcpy(deep + sizeof deep - 5, "1 }}", 5);
    expect_error(deep, "nested too deeply");
    expect_error("{{ 'ab\\q' }}", "unsupported escape");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_semantics),
        cmocka_unit_test(test_lists_not_printable),
        cmocka_unit_test(test_scopes_and_namespace),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
