#!/usr/bin/env python3
"""Writes tests/fuzz/regressions/<harness>/item5-*: the wrong JSON types that
issue 17 item 5 found, applied to the real seeds of tests/fuzz/corpus (run by
make_corpora.sh after the corpora). Each must be handled (a warning, a
skipped token, an error), never abort: the fuzz.<harness> replay runs them.
Crash inputs a fuzzer found are saved next to these by hand (other names)."""
import glob
import json
import os

here = os.path.dirname(os.path.abspath(__file__))
C = os.path.join(here, 'corpus')
R = os.path.join(here, 'regressions')


def put(harness, name, data):
    os.makedirs(os.path.join(R, harness), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(R, harness, name), 'wb') as f:
        f.write(data)


def compact(j):
    return json.dumps(j, separators=(',', ':'))


# volume_tokens: the suspended volume's whole token set, one field wrong.
tokens = json.load(open(os.path.join(C, 'volume_tokens', 'suspended')))


def token_set(edit):
    t = json.loads(json.dumps(tokens))
    edit(t)
    return compact(t)


def first(t, type_, need=None):
    return [v for v in t.values()
            if v['type'] == type_ and (need is None or need in v['params'])][0]


for name, edit in [
    ('volume-wrapped-fvek-number',
     lambda t: first(t, 'volmgr-volume').__setitem__('wrapped_fvek', 5)),
    ('volume-created-number',
     lambda t: first(t, 'volmgr-volume').__setitem__('created', 5)),
    ('clear-key-created-number',
     lambda t: first(t, 'volmgr-clear-key').__setitem__('created', 5)),
    ('clear-key-vmk-number',
     lambda t: first(t, 'volmgr-clear-key').__setitem__('vmk', 5)),
    ('passphrase-kdf-number',
     lambda t: first(t, 'volmgr-passphrase')['params'].__setitem__('kdf', 5)),
    ('startup-key-file-hint-array',
     lambda t: first(t, 'volmgr-startup-key')['params'].__setitem__(
         'file_hint', [1])),
    ('tpm-file-hint-number',
     lambda t: first(t, 'volmgr-tpm', 'file_hint')['params'].__setitem__(
         'file_hint', 5)),
]:
    put('volume_tokens', 'item5-' + name, token_set(edit))


# protector_token: one token of the kind, one field wrong.
def token(kind, need=None):
    for f in sorted(glob.glob(os.path.join(C, 'protector_token', kind + '-*'))):
        j = json.load(open(f))
        if need is None or need in j['params']:
            return j
    raise SystemExit('no %s token in the corpus' % kind)


for name, kind, need, key, value in [
    ('passphrase-kdf-number', 'passphrase', None, 'kdf', 5),
    ('startup-key-file-hint-number', 'startup-key', None, 'file_hint', 5),
    ('startup-key-file-hint-array', 'startup-key', None, 'file_hint', []),
    ('tpm-file-hint-number', 'tpm', 'file_hint', 'file_hint', 5),
]:
    j = token(kind, need)
    j['params'][key] = value
    put('protector_token', 'item5-' + name, compact(j))

# header_check: a token whose "type" is a number (JSON area edited in place,
# checksum left stale, as a damaged header would have it).
raw = bytearray(open(os.path.join(C, 'header_check', 'format'), 'rb').read())
end = raw.index(b'\0', 4096)
js = json.loads(raw[4096:end].decode())
js['tokens'][sorted(js['tokens'])[0]]['type'] = 5
area = compact(js).encode()
raw[4096:16384] = area + b'\0' * (12288 - len(area))
put('header_check', 'item5-token-type-number', bytes(raw))

# extract_state: "format": 5.
state = json.load(open(sorted(glob.glob(os.path.join(C, 'extract_state', '*')))[0]))
state['format'] = 5
put('extract_state', 'item5-format-number', json.dumps(state) + '\n')
