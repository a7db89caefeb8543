#!/usr/bin/env node
// Prints fresh UserSigs / PrivateMapKeys made by the official npm package `tls-sig-api-v2`
// (genUserSig, genPrivateMapKey, genPrivateMapKeyWithStringRoomID) as a JSON array, in the
// format of gen_usersig_vectors.py (see there).
//
//   node tests/e2e/gen_usersig_vectors.js [--sdkappid N] [--key KEY]

'use strict';

const crypto = require('crypto');
const path = require('path');
const TLSSigAPIv2 = require('tls-sig-api-v2');
const pkg = require(path.join(path.dirname(require.resolve('tls-sig-api-v2')), 'package.json'));

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const sdkappid = Number(arg('--sdkappid', '1400000001'));
const key = arg('--key', crypto.randomBytes(32).toString('hex'));
const lib = `npm tls-sig-api-v2 ${pkg.version}`;
const EXPIRE = 86400;

const api = new TLSSigAPIv2.Api(sdkappid, key);
const out = [];
for (const identifier of ['alice', 'user_01-x', '管理员']) {
  out.push({ kind: 'usersig', identifier, expire: EXPIRE, sig: api.genUserSig(identifier, EXPIRE) });
}
for (const [room, privilege] of [[1234, 255], [4294967294, 42]]) {
  out.push({
    kind: 'privatemapkey', identifier: 'alice', expire: EXPIRE, room, privilege,
    sig: api.genPrivateMapKey('alice', EXPIRE, room, privilege),
  });
}
for (const [room, privilege] of [['room-abc_1', 255], ['1234', 2]]) {
  out.push({
    kind: 'privatemapkey_str', identifier: 'bob', expire: EXPIRE, room, privilege,
    sig: api.genPrivateMapKeyWithStringRoomID('bob', EXPIRE, room, privilege),
  });
}
for (const v of out) Object.assign(v, { sdkappid, key, lib, expect: 'valid' });

const other = new TLSSigAPIv2.Api(sdkappid, crypto.randomBytes(32).toString('hex'));
out.push({
  kind: 'usersig', identifier: 'mallory', expire: EXPIRE, sig: other.genUserSig('mallory', EXPIRE),
  sdkappid, key, lib, expect: 'bad_signature',
});

process.stdout.write(JSON.stringify(out, null, 1) + '\n');
