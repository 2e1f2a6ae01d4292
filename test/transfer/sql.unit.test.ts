import { strict as assert } from 'node:assert';
import * as mysql from 'mysql2/promise';
import { afterKey, atMostKey, connectionConfig, id, inList, isConnectionError, isLockConflict, keysetSelect, qualified } from '../../lib/sql';
import { transferError } from '../../transfer/failures';

/** The statement as the server would receive it. */
const text = (p: { sql: string; params: unknown[] }) => mysql.format(p.sql, p.params as never);

describe('lib/sql: identifiers, key predicates, connection settings', () => {
  it('quotes identifiers with escapeId, never splitting on dots', () => {
    assert.equal(id('items'), '`items`');
    assert.equal(id('a.b'), '`a.b`');
    assert.equal(id('x`y'), '`x``y`');
    assert.equal(qualified('shop', 'items'), '`shop`.`items`');
  });

  it('IN-lists for one and for several key columns', () => {
    assert.equal(text(inList(['id'], [[1], [2]])), '`id` IN (1, 2)');
    assert.equal(text(inList(['a', 'b'], [[1, 'x'], [2, 'y']])), "(`a`, `b`) IN ((1, 'x'), (2, 'y'))");
    assert.equal(inList(['id'], []).sql, '0');
  });

  it('keyset predicates: after a key as an OR of prefixes, up to a key as a row comparison', () => {
    assert.equal(text(afterKey(['a'], [5])), '(`a` > 5)');
    assert.equal(text(afterKey(['a', 'b'], [5, 7])), '(`a` > 5) OR (`a` = 5 AND `b` > 7)');
    assert.equal(text(atMostKey(['a', 'b'], [9, 1])), '(`a`, `b`) <= (9, 1)');
    assert.equal(text(keysetSelect('db', 't', ['a', 'b'], [5, 7], 100, [9, 1])),
      'SELECT * FROM `db`.`t` WHERE ((`a` > 5) OR (`a` = 5 AND `b` > 7)) AND ((`a`, `b`) <= (9, 1)) ORDER BY `a`, `b` LIMIT 100');
    assert.equal(text(keysetSelect(null, 't', ['id'], null, 10, null, '`id`')), 'SELECT `id` FROM `t` WHERE 1 ORDER BY `id` LIMIT 10');
  });

  it('one place builds every connection: user, password and database from the URL or the options', () => {
    const c = connectionConfig('mysql://us%40r:p%2Fw@127.0.0.1:3307/app', {});
    assert.deepEqual([c.host, c.port, c.user, c.password, c.database, c.supportBigNumbers, c.bigNumberStrings], ['127.0.0.1', 3307, 'us@r', 'p/w', 'app', true, false]);
    assert.equal(connectionConfig('mysql://u@h/app', { database: 'other' }).database, 'other');
    assert.equal(connectionConfig('mysql://u@h/', {}).database, undefined);
    assert.equal(connectionConfig('mysql://u@h/', { rawWhenNoValues: true }).queryFormat!('SELECT "?"', []), 'SELECT "?"');
  });

  it('tells an unreachable server from a refused statement', () => {
    assert.ok(isConnectionError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })));
    assert.ok(isConnectionError(new Error("Can't add new command when connection is in closed state")));
    assert.ok(isConnectionError(Object.assign(new Error('lost'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true })));
    assert.ok(!isConnectionError(Object.assign(new Error('dup'), { code: 'ER_DUP_ENTRY' })));
    assert.ok(isLockConflict({ code: 'ER_LOCK_DEADLOCK' }) && !isLockConflict({ code: 'ER_DUP_ENTRY' }));
  });

  it('every transfer failure becomes a registry error of its side, with the cause', () => {
    const lost = Object.assign(new Error("Can't add new command when connection is in closed state"), {});
    const e1 = transferError(lost, 'target', 'writing a chunk of items');
    assert.equal(e1.code, 'TRANSFER_TARGET_UNREACHABLE');
    assert.equal(e1.cause, lost);
    assert.match(e1.message, /writing a chunk of items/);
    assert.equal(transferError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'source', 'r').code, 'TRANSFER_SOURCE_UNREACHABLE');
    assert.equal(transferError(Object.assign(new Error('too long'), { code: 'ER_DATA_TOO_LONG' }), 'target', 'w').code, 'TRANSFER_SCHEMA_MISMATCH');
    assert.equal(transferError(Object.assign(new Error('full'), { code: 'ER_RECORD_FILE_FULL' }), 'target', 'w').code, 'TRANSFER_TARGET_WRITE_FAILED');
    assert.equal(transferError(Object.assign(new Error('denied'), { code: 'ER_TABLEACCESS_DENIED_ERROR' }), 'source', 'r').code, 'TRANSFER_SOURCE_READ_FAILED');
    assert.equal(transferError(e1, 'source', 'again'), e1);
  });
});
