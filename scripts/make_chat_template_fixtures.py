#!/usr/bin/env python3
"""Reference renders for ohm's Jinja engine and chat templates (run by hand, outputs committed).

Writes tests/fixtures/chat_templates/:
  jinja_cases.json     engine unit cases: template + context -> output (or error), rendered by
                       Python Jinja2 configured exactly as transformers configures it
                       (transformers.utils.chat_template_utils._compile_jinja_template).
  chat_cases.json      every template in ../shared/data/chat-templates/*.jinja and every
                       chat_template in ../shared/data/tokenizers/*/tokenizer_config.json,
                       rendered for a set of conversations with transformers
                       (render_jinja_template for raw templates, AutoTokenizer.apply_chat_template
                       for tokenizer configs). Conversations a template rejects record the error.

Needs: pip install transformers jinja2 tokenizers (versions recorded in the output).
Usage: python3 scripts/make_chat_template_fixtures.py [--shared ../shared/data]
"""
import argparse
import gzip
import json
import lzma
import os
import shutil
import tempfile

import jinja2
import transformers
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import (
    _compile_jinja_template,
    _normalize_chat_messages,
    render_jinja_template,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "chat_templates")

# ------------------------------------------------------------------------------------------------
# Engine unit cases: (name, template, context)

ENGINE_CASES = [
    # --- output and literals
    ("text", "hello world", {}),
    ("var", "{{ x }}", {"x": "hi"}),
    ("int", "{{ 42 }}|{{ -7 }}|{{ 1_000 }}", {}),
    ("float_repr", "{{ 1.0 }}|{{ 2.5 }}|{{ 1e16 }}|{{ 1.5e-5 }}|{{ 0.1 + 0.2 }}|{{ 100.0 }}|{{ 1e-4 }}|{{ 123456789.123 }}", {}),
    ("float_ctx", "{{ x }}|{{ y }}|{{ z }}", {"x": 3.0, "y": 0.5, "z": 1e100}),
    ("none_bool", "{{ none }}|{{ None }}|{{ true }}|{{ False }}|{{ x }}", {"x": None}),
    ("undefined_prints_empty", "[{{ missing }}]", {}),
    ("string_escapes", "{{ 'a\\nb' }}|{{ \"q'q\" }}|{{ 'tab\\there' }}|{{ '\\u00e9\\x41' }}", {}),
    ("string_concat_adjacent", "{{ 'a' 'b' \"c\" }}", {}),
    ("list_repr", "{{ [1, 'a', none, true, 1.5, [2]] }}", {}),
    ("dict_repr", "{{ {'a': 1, 'b': 'x'} }}|{{ d }}", {"d": {"k": [1, 2], "z": None}}),
    ("tuple_repr", "{{ (1, 2) }}|{{ (1,) }}|{{ () }}", {}),
    ("str_repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"'] }}", {}),
    ("unicode", "{{ s }}|{{ s|length }}|{{ s[1] }}|{{ s[::-1] }}", {"s": "héllo wörld 日本"}),
    # --- arithmetic
    ("arith", "{{ 1 + 2 }}|{{ 7 - 10 }}|{{ 3 * 4 }}|{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}", {}),
    ("arith_float", "{{ 1.5 + 1 }}|{{ 7.5 // 2 }}|{{ 7.5 % 2 }}|{{ 10 / 4 }}|{{ 3 * 1.0 }}", {}),
    ("arith_precedence", "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ -2 ** 2 }}|{{ 2 * 3 ~ 4 }}|{{ 10 - 2 - 3 }}", {}),
    ("str_mul_concat", "{{ 'ab' * 3 }}|{{ 'a' + 'b' }}|{{ [1] + [2, 3] }}|{{ 1 ~ 2 ~ 'x' ~ none }}", {}),
    ("bool_arith", "{{ true + 1 }}|{{ true and 'x' }}|{{ 0 or 'y' }}|{{ '' or [] }}|{{ 1 and 0 }}", {}),
    # --- comparisons
    ("compare", "{{ 1 < 2 }}|{{ 2 <= 2 }}|{{ 'a' < 'b' }}|{{ 1 == 1.0 }}|{{ 1 != 2 }}|{{ [1,2] == [1,2] }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}", {}),
    ("compare_mixed", "{{ 'a' == 1 }}|{{ none == none }}|{{ x == y }}|{{ true == 1 }}", {"x": {"a": [1]}, "y": {"a": [1]}}),
    ("in_ops", "{{ 'a' in 'cat' }}|{{ 2 in [1,2] }}|{{ 'k' in d }}|{{ 'z' not in d }}|{{ 3 not in [1] }}", {"d": {"k": 1}}),
    ("not_ops", "{{ not true }}|{{ not none }}|{{ not [] }}|{{ not 'x' }}|{{ not x is defined }}", {}),
    # --- conditionals
    ("if_else", "{% if x %}yes{% elif y %}maybe{% else %}no{% endif %}", {"x": 0, "y": "s"}),
    ("if_chain", "{% for v in [0, 1, 2, 3] %}{% if v == 0 %}a{% elif v == 1 %}b{% elif v == 2 %}c{% else %}d{% endif %}{% endfor %}", {}),
    ("cond_expr", "{{ 'a' if x else 'b' }}|{{ 'c' if not x }}|{{ ('d' if x) ~ 'e' }}", {"x": False}),
    ("truthiness", "{% for v in [0, 0.0, '', [], {}, none, 'a', [0], {'a': 1}, 1] %}{{ 'T' if v else 'F' }}{% endfor %}", {}),
    # --- attribute / item access
    ("attr_item", "{{ d.a }}|{{ d['a'] }}|{{ d.b.c }}|{{ l[0] }}|{{ l[-1] }}|{{ l.1 }}", {"d": {"a": 1, "b": {"c": "x"}}, "l": [10, 20, 30]}),
    ("missing_attr", "[{{ d.nope }}][{{ d['nope'] }}][{{ l[10] }}][{{ none.x }}]", {"d": {}, "l": [1]}),
    ("dict_methods", "{{ d.items() | list }}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d.get('a') }}|{{ d.get('z', 'dflt') }}|{{ d.get('z') }}", {"d": {"a": 1, "b": 2}}),
    ("dict_iter", "{% for k in d %}{{ k }},{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("slicing", "{{ s[1:3] }}|{{ s[:2] }}|{{ s[-2:] }}|{{ s[::2] }}|{{ s[::-1] }}|{{ l[1:] }}|{{ l[:-1] }}|{{ l[::-1] }}|{{ l[-2::-1] }}|{{ l[5:] }}", {"s": "abcdef", "l": [1, 2, 3, 4]}),
    # --- string methods
    ("str_methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.upper() }}|{{ s.lower() }}|{{ t.title() }}|{{ t.capitalize() }}", {"s": "  Hello World \n", "t": "hello wORLD foo-bar"}),
    ("str_methods2", "{{ s.split() }}|{{ s.split(',') }}|{{ s.split(',', 1) }}|{{ s.startswith('a') }}|{{ s.endswith(('x', 'c')) }}|{{ s.replace(',', ';') }}|{{ s.find('b') }}|{{ s.count(',') }}", {"s": "a,b,c"}),
    ("str_strip_chars", "{{ s.strip('x') }}|{{ s.lstrip('xa') }}|{{ s.rstrip('x') }}", {"s": "xxaxbxx"}),
    ("str_format", "{{ '{} and {}'.format('a', 1) }}|{{ '{0}{1}{0}'.format('x', 'y') }}|{{ '{name}!'.format(name='n') }}|{{ '%s=%d' % ('k', 3) }}|{{ '%.2f' % 3.14159 }}", {}),
    ("str_join_method", "{{ ', '.join(['a', 'b']) }}|{{ ''.join(l) }}", {"l": ["x", "y", "z"]}),
    ("str_splitlines", "{{ s.splitlines() }}", {"s": "a\nb\r\nc\n"}),
    # --- filters
    ("f_trim", "[{{ s|trim }}][{{ '  x  '|trim }}][{{ 'xxyxx'|trim('x') }}]", {"s": "\n\t hi \n"}),
    ("f_length", "{{ l|length }}|{{ s|length }}|{{ d|length }}|{{ l|count }}|{{ missing|length }}", {"l": [1, 2, 3], "s": "héé", "d": {"a": 1}}),
    ("f_tojson", "{{ d|tojson }}|{{ l|tojson }}|{{ 'é\"<>&'|tojson }}|{{ 1.0|tojson }}|{{ none|tojson }}|{{ true|tojson }}", {"d": {"b": 1, "a": [1.5, "x", None, False]}, "l": []}),
    ("f_tojson_indent", "{{ d|tojson(indent=2) }}\n{{ d|tojson(indent=4) }}\n{{ {}|tojson(indent=2) }}|{{ []|tojson(indent=2) }}", {"d": {"name": "f", "params": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}, "empty": {}, "list": [1, [2, 3]]}}),
    ("f_tojson_sort_keys", "{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ d|tojson(ensure_ascii=true) }}", {"d": {"b": "ü😀", "a": 1}}),
    ("f_tojson_control", "{{ s|tojson }}", {"s": "a\u0001b\tc\nd\\e/f\u007f\u2028"}),
    ("f_string", "{{ 1|string }}|{{ none|string }}|{{ [1, 'a']|string }}|{{ 1.0|string }}|{{ missing|string }}", {}),
    ("f_upper_lower", "{{ 'aBc'|upper }}|{{ 'aBc'|lower }}|{{ 'hello world'|capitalize }}|{{ 'hello big-world (x)'|title }}", {}),
    ("f_replace", "{{ 'a-b-c'|replace('-', '+') }}|{{ 'a-b-c'|replace('-', '', 1) }}|{{ 'abc'|replace('', '.') }}", {}),
    ("f_default", "{{ missing|default('d') }}|{{ none|default('d') }}|{{ ''|default('d', true) }}|{{ x|d('q') }}|{{ missing|default }}", {"x": 0}),
    ("f_first_last", "{{ l|first }}|{{ l|last }}|{{ 'abc'|first }}|{{ 'abc'|last }}|{{ []|first }}", {"l": [3, 4, 5]}),
    ("f_int_float", "{{ '42'|int }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}|{{ '2.5'|float }}|{{ 3|float }}|{{ 'x'|float }}|{{ true|int }}", {}),
    ("f_list", "{{ 'ab'|list }}|{{ d|list }}|{{ (1, 2)|list }}", {"d": {"x": 1, "y": 2}}),
    ("f_items_dictsort", "{{ d|items|list }}|{{ d|dictsort }}|{{ d|dictsort(reverse=true) }}|{{ d|dictsort(by='value') }}", {"d": {"b": 2, "A": 3, "c": 1}}),
    ("f_join", "{{ l|join }}|{{ l|join(', ') }}|{{ [1, 2]|join('-') }}|{{ users|join(', ', attribute='name') }}", {"l": ["a", "b"], "users": [{"name": "x"}, {"name": "y"}]}),
    ("f_map", "{{ users|map(attribute='name')|list }}|{{ l|map('upper')|list }}|{{ users|map(attribute='age', default=0)|list }}|{{ nums|map('string')|join(',') }}", {"users": [{"name": "x", "age": 1}, {"name": "y"}], "l": ["a", "b"], "nums": [1, 2]}),
    ("f_selectattr", "{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}|{{ ms|rejectattr('role', 'equalto', 'user')|list|length }}|{{ ms|selectattr('tool')|list|length }}|{{ ms|selectattr('role', '==', 'system')|list|length }}", {"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "tool": True}, {"role": "user", "content": "c"}]}),
    ("f_select_reject", "{{ l|select('odd')|list }}|{{ l|reject('odd')|list }}|{{ l|select|list }}|{{ l|select('gt', 2)|list }}|{{ l|select('divisibleby', 2)|list }}", {"l": [0, 1, 2, 3, 4]}),
    ("f_select_map_none", "{{ none|selectattr('type', 'equalto', 'x')|list }}|{{ none|map(attribute='a')|list }}|{{ missing|select|list }}|{{ []|map('upper')|list }}", {}),
    ("f_generators", "{{ (l|map('upper'))|join }}|{{ l|select|first }}|{{ (l|select) is sequence }}|{{ (l|reverse) is iterable }}|{{ 'yes' if []|select else 'no' }}", {"l": ["a", "b"]}),
    ("err_generator_length", "{{ l|select|length }}", {"l": [1]}),
    ("err_generator_tojson", "{{ l|map('string')|tojson }}", {"l": [1]}),
    ("markup", "{{ 'a<'|safe + '<b>' }}|{{ '<x>' + 'y'|safe }}|{{ ('<'|safe) ~ '<' }}|{{ '<i>'|e }}|{{ '<i>'|escape|e }}|{{ ('<'|safe + '&')|upper }}|{{ ('&'|safe).strip() + '<' }}|{{ '\"'|safe + d|tojson }}|{{ 'x'|safe * 2 + '>' }}", {"d": {"k": "'v'"}}),
    ("f_numbers", "{{ -3|abs }}|{{ -2.5|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.1|round(0, 'ceil') }}|{{ 2.9|round(method='floor') }}", {}),
    ("f_unique_reverse_sort", "{{ [3, 1, 3, 2]|unique|list }}|{{ ['a', 'A', 'b']|unique|list }}|{{ [1, 2, 3]|reverse|list }}|{{ 'abc'|reverse }}|{{ [3, 1, 2]|sort }}|{{ ['b', 'A', 'c']|sort }}|{{ [3, 1, 2]|sort(reverse=true) }}|{{ us|sort(attribute='n')|map(attribute='n')|list }}", {"us": [{"n": 2}, {"n": 1}]}),
    ("f_indent", "{{ s|indent }}|{{ s|indent(2, true) }}|{{ s|indent(2, first=true, blank=true) }}|{{ 'x'|indent('>') }}", {"s": "a\n\nb\nc"}),
    ("f_wordcount_batch", "{{ 'hello big world'|wordcount }}|{{ [1, 2, 3, 4, 5]|batch(2)|list }}|{{ [1, 2, 3]|batch(2, 'x')|list }}", {}),
    ("f_safe_chain", "{{ '<b>'|safe }}|{{ ' A '|trim|lower|replace('a', 'b') }}|{{ ['x', 'y']|join|upper }}", {}),
    ("f_sum_min_max", "{{ [1, 2, 3]|sum }}|{{ [1, 2]|sum(start=10) }}|{{ [3, 1, 2]|min }}|{{ [3, 1, 2]|max }}|{{ us|sum(attribute='n') }}", {"us": [{"n": 2}, {"n": 5}]}),
    # --- tests
    ("tests_types", "{% for v in [none, true, 1, 1.5, 'x', [1], {'a': 1}] %}{{ v is none }}{{ v is boolean }}{{ v is integer }}{{ v is float }}{{ v is number }}{{ v is string }}{{ v is mapping }}{{ v is iterable }}{{ v is sequence }};{% endfor %}", {}),
    ("tests_defined", "{{ x is defined }}|{{ y is defined }}|{{ y is undefined }}|{{ x is not none }}|{{ d.k is defined }}|{{ d.z is defined }}", {"x": 1, "d": {"k": None}}),
    ("tests_values", "{{ 3 is odd }}|{{ 4 is even }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(2) }}|{{ 'a' is equalto 'a' }}|{{ 1 is eq 1 }}|{{ 2 is in [1, 2] }}|{{ true is true }}|{{ 0 is false }}|{{ 'ab' is lower }}|{{ 'AB' is upper }}|{{ 1 is sameas 1 }}|{{ 2 is gt 1 }}|{{ 2 is ge 3 }}|{{ 2 is lt 3 }}|{{ 2 is ne 2 }}", {}),
    ("tests_callable", "{{ raise_exception is callable }}|{{ 1 is callable }}|{{ 'upper' is filter }}|{{ 'odd' is test }}", {}),
    # --- for loops
    ("for_loop_vars", "{% for x in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}", {"l": ["a", "b", "c"]}),
    ("for_prev_next_cycle", "{% for x in l %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle('o', 'e') }}]{% endfor %}", {"l": [1, 2, 3]}),
    ("for_else", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for x in [1] %}{{ x }}{% else %}empty{% endfor %}", {}),
    ("for_filter", "{% for x in l if x > 1 %}{{ x }}{{ ',' if not loop.last }}{% endfor %}|{% for m in ms if m.role != 'system' %}{{ loop.index }}{{ m.role }}{% endfor %}", {"l": [1, 2, 3, 4], "ms": [{"role": "system"}, {"role": "user"}, {"role": "assistant"}]}),
    ("for_unpack", "{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }};{% endfor %}{% for (k, v) in d|dictsort %}{{ k }}{{ v }}{% endfor %}", {"d": {"y": 1, "x": 2}}),
    ("for_nested", "{% for i in range(2) %}{% for j in range(3) %}{{ i }}{{ j }}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("for_string_dict", "{% for c in 'abc' %}{{ c }}-{% endfor %}{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}", {}),
    ("for_break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("for_scope", "{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = i + 5 %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("range", "{{ range(3)|list }}|{{ range(1, 4)|list }}|{{ range(10, 0, -3)|list }}|{{ range(0)|list }}", {}),
    # --- set / namespace
    ("set", "{% set a = 1 %}{% set b, c = 2, 3 %}{{ a }}{{ b }}{{ c }}{% set t = (1, 2) %}{{ t }}", {}),
    ("set_block", "{% set x %}Hello {{ name }}!{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}", {"name": "W"}),
    ("namespace", "{% set ns = namespace(found=false, n=0) %}{% for i in range(4) %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.found }}|{{ ns.n }}", {}),
    ("namespace_dict_global", "{% set d = dict(a=1, b='x') %}{{ d }}|{{ dict(d, c=3) }}|{% set ns = namespace(d) %}{{ ns.a }}", {}),
    ("list_dict_literals", "{% set l = [1, 2, ] %}{% set d = {'k': l, 'n': {'x': none}} %}{{ d.k[1] }}|{{ d['n'].x }}|{{ d|tojson }}", {}),
    # --- macros / call / filter blocks
    ("macro", "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('A') }}|{{ greet('B', 'Hi') }}|{{ greet(greeting='Yo', name='C') }}", {}),
    ("macro_scope", "{% set g = 'global' %}{% macro m(x) %}{{ x }}-{{ g }}{% set g = 'local' %}-{{ g }}{% endmacro %}{{ m(1) }}|{{ g }}", {}),
    ("macro_varargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k='v') }}", {}),
    ("macro_recursive", "{% macro render(v) %}{% if v is mapping %}{% for k, x in v.items() %}{{ k }}:({{ render(x) }}){% endfor %}{% else %}{{ v }}{% endif %}{% endmacro %}{{ render(d) }}", {"d": {"a": {"b": 1, "c": {"d": 2}}}}),
    ("call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ 1 + 1 }}{% endcall %}", {}),
    ("call_block_args", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}[{{ x }}]{% endcall %}", {}),
    ("filter_block", "{% filter upper %}hello {{ 'w' }}{% endfilter %}|{% filter trim|replace('a', 'b') %}  aaa  {% endfilter %}", {}),
    ("with_block", "{% with a = 1, b = 'x' %}{{ a }}{{ b }}{% endwith %}[{{ a }}]", {}),
    ("raw_block", "{% raw %}{{ not rendered }} {% if %}{% endraw %}|{{ 1 }}", {}),
    ("generation_block", "{% for m in ms %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}", {"ms": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
    ("comments", "a{# comment #}b{#- strip -#}  c\n{# line comment #}\nd", {}),
    # --- whitespace control (trim_blocks + lstrip_blocks as transformers sets them)
    ("ws_trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("ws_lstrip_blocks", "start\n    {% if true %}\n    indented\n    {% endif %}\nend", {}),
    ("ws_lstrip_not_vars", "  {{ 'x' }}\n  {% if true %}y{% endif %}\n", {}),
    ("ws_minus", "a   {%- if true -%}   b   {%- endif -%}   c\n\n{{- ' d ' -}}\n\n e", {}),
    ("ws_plus", "a\n  {%+ if true +%}\nb\n  {%+ endif %}\nc", {}),
    ("ws_loop_lines", "{% for m in ms %}\n  {{ m }}\n{% endfor %}\n", {"ms": ["a", "b"]}),
    ("ws_mixed_inline", "x {% if true %} y {% endif %} z\n  {%- set q = 1 %}\nw {{ q }}", {}),
    ("ws_trailing_newline", "line\n", {}),
    ("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", {}),
    ("ws_comment_lstrip", "x\n   {# c #}\ny\n  {#- c2 #}  \nz", {}),
    ("ws_raw_ws", "  {% raw %}\n  {{ x }}\n  {% endraw %}\nafter", {}),
    ("ws_var_minus_newline", "{{- 'a' -}}\n\n{{ 'b' }}\n{%- if true %}\n\nc{% endif -%}\n", {}),
    ("ws_tab_lstrip", "\t\t{% if true %}\t{% endif %}\t\nq", {}),
    # --- realistic chat snippets
    ("chatml", "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}", {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "add_generation_prompt": True}),
    ("tools_json", "{%- for tool in tools %}\n{{- tool | tojson }}\n{% endfor %}\n{{- tools[0]['function']['parameters'] | tojson(indent=4) }}", {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 3}}, "required": ["city"]}}}]}),
    ("strftime_global", "{{ strftime_now is defined }}|{{ raise_exception is defined }}|{{ namespace is defined }}", {}),
    ("idioms", "{{ ms|length - 1 }}|{{ (ms|length) is even }}|{{ ms[0].content is not string }}|{{ ms[-1]['content'][-1] }}|{{ ms[0].content|tojson if ms[0].content is not string else ms[0].content|trim }}|{{ 1 in {'1': 2} }}|{{ 10 // 3 * 3 }}|{{ 'b' > 'a' }}|{{ [1, 2] < [1, 3] }}|{{ range(3)|list|tojson }}|{{ '7'|int + 1 }}", {"ms": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}, {"role": "assistant", "content": " ok! "}]}),
    ("ns_in_loop_and_macro", "{% set ns = namespace(last_user=-1, items=[]) %}{% for m in ms %}{% if m.role == 'user' %}{% set ns.last_user = loop.index0 %}{% set ns.items = ns.items + [m.content] %}{% endif %}{% endfor %}{{ ns.last_user }}{{ ns.items }}{% macro show(n) %}[{{ n.last_user }}]{% endmacro %}{{ show(ns) }}", {"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}),
    ("reverse_loop_index", "{% for m in ms[::-1] %}{% set index = (ms|length - 1) - loop.index0 %}{{ index }}{{ m }}{% endfor %}", {"ms": ["a", "b", "c"]}),
    ("qwen_think_split", "{% set c = s %}{% if '</think>' in c %}{% set r = c.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}{% set c = c.split('</think>')[-1].lstrip('\n') %}{% endif %}[{{ r }}][{{ c }}]", {"s": "<think>\nreason\n</think>\n\nanswer"}),
    ("loop_in_set_block_ws", "{%- set sys %}\n  {%- for t in tools %}\n    {{- t.name }}\n    {%- if not loop.last %}, {% endif %}\n  {%- endfor %}\n{% endset %}\n[{{ sys }}]", {"tools": [{"name": "a"}, {"name": "b"}]}),
    # --- errors (expected to raise)
    ("err_raise_exception", "{% if x %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}", {"x": True}),
    ("err_undefined_attr", "{{ missing.attr }}", {}),
    ("err_undefined_call", "{{ missing() }}", {}),
    ("err_undefined_arith", "{{ missing + 1 }}", {}),
    ("err_type_add", "{{ 'a' + 1 }}", {}),
    ("err_div_zero", "{{ 1 / 0 }}", {}),
    ("err_syntax_unclosed", "{% if x %}no end", {}),
    ("err_syntax_unknown_tag", "{% frobnicate %}", {}),
    ("err_syntax_bad_expr", "{{ 1 + }}", {}),
    ("err_not_iterable", "{% for x in 5 %}{% endfor %}", {}),
    ("err_unknown_filter", "{{ 1|nosuchfilter }}", {}),
    ("err_ns_underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
    ("err_list_append_unsafe", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("err_tojson_undefined", "{{ missing|tojson }}", {}),
]


def engine_env_render(template, context):
    compiled = _compile_jinja_template(template)
    return compiled.render(**context)


def make_engine_cases():
    cases = []
    for name, tmpl, ctx in ENGINE_CASES:
        case = {"name": name, "template": tmpl, "context": ctx}
        try:
            case["output"] = engine_env_render(tmpl, ctx)
        except Exception as e:  # noqa: BLE001 - any failure is the expected result
            case["error"] = f"{type(e).__name__}: {e}"
            case["raised"] = type(e).__name__ == "TemplateError"
        cases.append(case)
    return cases


# ------------------------------------------------------------------------------------------------
# Conversations for chat templates

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "description": "Forecast days", "default": 1},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web. Returns the top results as text.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "max_results": {"type": "number"}},
            "required": ["query"],
        },
    },
}

SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello! How are you?"}
A1 = {"role": "assistant", "content": "I'm fine, thank you. How can I help?"}
U2 = {"role": "user", "content": "Write a haiku about the sea."}
A2 = {"role": "assistant", "content": "Waves fold into foam\nsalt wind carries gull voices\nthe tide keeps its time"}
U3 = {"role": "user", "content": "Now one about mountains, please."}
UW = {"role": "user", "content": "What's the weather in Paris tomorrow?"}
TOOL_CALL = {
    "role": "assistant",
    "tool_calls": [
        {"id": "call12345", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", "days": 1}}}
    ],
}
TOOL_CALL_WITH_CONTENT = dict(TOOL_CALL, content="")
TOOL_RESP = {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
             "content": "{\"temperature\": 21.5, \"condition\": \"sunny\"}"}
A_AFTER_TOOL = {"role": "assistant", "content": "Tomorrow in Paris: sunny, 21.5 °C."}
PARALLEL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call00001", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"id": "call00002", "type": "function",
         "function": {"name": "web_search", "arguments": {"query": "Paris events", "max_results": 2.5}}},
    ],
}
PAR_RESP1 = {"role": "tool", "tool_call_id": "call00001", "name": "get_weather", "content": "18 C, rain"}
PAR_RESP2 = {"role": "tool", "tool_call_id": "call00002", "name": "web_search", "content": "Jazz festival"}

TOOL_CALL_STR = {
    "role": "assistant",
    "content": "",
    "tool_calls": [
        {"id": "call12345", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
    ],
}

# Cohere's tool format (command-r tool_use templates read name/description/parameter_definitions).
COHERE_TOOLS = [
    {"name": "internet_search", "description": "Returns a list of relevant document snippets for a textual query retrieved from the internet",
     "parameter_definitions": {"query": {"description": "Query to search the internet with", "type": "str", "required": True}}},
    {"name": "directly_answer", "description": "Calls a standard (un-augmented) AI chatbot to generate a response given the conversation history",
     "parameter_definitions": {}},
]

CONVERSATIONS = [
    ("user_gen", [U1], None, True),
    ("user_nogen", [U1], None, False),
    ("system_user_gen", [SYS, U1], None, True),
    ("multi_turn_gen", [SYS, U1, A1, U2], None, True),
    ("multi_turn_no_system_nogen", [U1, A1, U2, A2], None, False),
    ("long_multi_turn_gen", [U1, A1, U2, A2, U3], None, True),
    ("unicode_whitespace", [{"role": "system", "content": "  Réponds en français.\n"},
                            {"role": "user", "content": "  日本語で答えて 😀 \n\n tabs\there  "}], None, True),
    ("assistant_reasoning", [U1, {"role": "assistant", "content": "Sure.", "reasoning_content": "The user greets me."}, U2], None, True),
    ("tools_user_gen", [UW], [WEATHER_TOOL], True),
    ("tools_system_user_gen", [SYS, UW], [WEATHER_TOOL, SEARCH_TOOL], True),
    ("tools_call_response", [UW, TOOL_CALL, TOOL_RESP, A_AFTER_TOOL], [WEATHER_TOOL], False),
    ("tools_call_response_gen", [SYS, UW, TOOL_CALL_WITH_CONTENT, TOOL_RESP], [WEATHER_TOOL], True),
    ("tools_parallel", [UW, PARALLEL, PAR_RESP1, PAR_RESP2], [WEATHER_TOOL, SEARCH_TOOL], True),
    ("tools_call_string_args", [UW, TOOL_CALL_STR, TOOL_RESP, A_AFTER_TOOL], [WEATHER_TOOL], True),
    ("alternating_3_nogen", [U1, A1, U2], None, False),
    ("alternating_4_gen", [U1, A1, U2, A2], None, True),
    ("template_syntax_in_content", [{"role": "user", "content": "Keep <b>tags</b> & {{ braces }} {% raw %} and \\n literally"}], None, True),
    ("empty_content", [{"role": "user", "content": ""}], None, True),
    ("not_alternating", [U1, U2], None, True),
    ("starts_with_assistant", [A1, U1], None, True),
]

# Templates that read date_string / strftime_now get a fixed date so the references are stable.
FIXED_KWARGS = {"date_string": "26 Jul 2024"}

RAW_TEMPLATE_TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}

# Per-template inputs for templates that need them (see each template's source).
TEMPLATE_OVERRIDES = {
    # Iterates `tools` unconditionally and reads Cohere-style tool fields.
    "CohereForAI-c4ai-command-r-plus-tool_use.jinja": {"always_tools": COHERE_TOOLS},
    # Iterates `tools` unconditionally.
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": {"default_tools": []},
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja": {"default_tools": []},
    # Reads a `functions` variable (a JSON string) instead of `tools`.
    "fireworks-ai-llama-3-firefunction-v2.jinja": {
        "extra": {"datetime": "2024-07-26", "functions": json.dumps([WEATHER_TOOL["function"], SEARCH_TOOL["function"]], indent=2)}},
}


def render_case(fn, conv, override=None):
    name, messages, tools, agp = conv
    override = override or {}
    if "always_tools" in override:
        tools = override["always_tools"]
    elif tools is None and "default_tools" in override:
        tools = override["default_tools"]
    case = {"name": name, "messages": messages, "tools": tools, "add_generation_prompt": agp}
    try:
        case["output"] = fn(messages, tools, agp)
    except Exception as e:  # noqa: BLE001
        case["error"] = f"{type(e).__name__}: {e}"
        case["raised"] = type(e).__name__ == "TemplateError"
    return case


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "data"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    engine = {
        "generator": "scripts/make_chat_template_fixtures.py",
        "jinja2": jinja2.__version__,
        "transformers": transformers.__version__,
        "environment": "ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, "
                       "extensions=[AssistantTracker, loopcontrols]) as transformers compiles chat templates",
        "cases": make_engine_cases(),
    }
    with open(os.path.join(OUT, "jinja_cases.json"), "w", encoding="utf-8") as f:
        json.dump(engine, f, ensure_ascii=False, indent=1)
        f.write("\n")

    templates = []
    tdir = os.path.join(args.shared, "chat-templates")
    for fn in sorted(os.listdir(tdir)):
        if not fn.endswith(".jinja"):
            continue
        src = open(os.path.join(tdir, fn), encoding="utf-8").read()
        override = TEMPLATE_OVERRIDES.get(fn, {})
        extra = dict(FIXED_KWARGS, **override.get("extra", {}))

        def render(messages, tools, agp, src=src, extra=extra):
            # As apply_chat_template: drop None-valued keys, then render with the special tokens.
            out, _ = render_jinja_template(
                conversations=[_normalize_chat_messages(messages)], tools=tools, chat_template=src,
                add_generation_prompt=agp, **RAW_TEMPLATE_TOKENS, **extra)
            return out[0]

        templates.append({
            "kind": "jinja", "path": f"chat-templates/{fn}", "special_tokens": RAW_TEMPLATE_TOKENS,
            "extra": extra, "cases": [render_case(render, c, override) for c in CONVERSATIONS]})

    kdir = os.path.join(args.shared, "tokenizers")
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(os.listdir(kdir)):
            cfg_path = os.path.join(kdir, name, "tokenizer_config.json")
            if not os.path.exists(cfg_path):
                continue
            cfg = json.load(open(cfg_path, encoding="utf-8"))
            if not cfg.get("chat_template"):
                continue
            d = os.path.join(tmp, name)
            os.makedirs(d)
            shutil.copy(cfg_path, d)
            for f in os.listdir(os.path.join(kdir, name)):
                p = os.path.join(kdir, name, f)
                if f.startswith("tokenizer.json"):
                    data = (gzip.open(p).read() if f.endswith(".gz") else
                            lzma.open(p).read() if f.endswith(".xz") else open(p, "rb").read())
                    open(os.path.join(d, "tokenizer.json"), "wb").write(data)
            tok = AutoTokenizer.from_pretrained(d)

            def render(messages, tools, agp, tok=tok):
                return tok.apply_chat_template(messages, tools=tools, add_generation_prompt=agp,
                                               tokenize=False, **FIXED_KWARGS)

            templates.append({
                "kind": "tokenizer_config", "path": f"tokenizers/{name}/tokenizer_config.json",
                "special_tokens": tok.special_tokens_map, "extra": FIXED_KWARGS,
                "cases": [render_case(render, c) for c in CONVERSATIONS]})

    chat = {
        "generator": "scripts/make_chat_template_fixtures.py",
        "jinja2": jinja2.__version__,
        "transformers": transformers.__version__,
        "note": "jinja: transformers.utils.chat_template_utils.render_jinja_template with special_tokens "
                "and extra as kwargs; tokenizer_config: AutoTokenizer.apply_chat_template(tokenize=False, **extra)",
        "templates": templates,
    }
    with open(os.path.join(OUT, "chat_cases.json"), "w", encoding="utf-8") as f:
        json.dump(chat, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for t in templates:
        ok = sum("output" in c for c in t["cases"])
        print(f"{t['path']}: {ok} rendered, {len(t['cases']) - ok} errors")


if __name__ == "__main__":
    main()
