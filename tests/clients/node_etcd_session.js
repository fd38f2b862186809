// node_etcd_session.js: one session of node-etcd (npm, the etcd v2 library for Node) against
// the endpoint given as argv[2]: every call of its API a user would make, in order, each
// answer printed as one JSON line {step, err, val} for tests/integration/test_node_etcd.py to
// compare between real etcd and quorumd. Async calls only (its *Sync calls need a native
// module that is installed without its build script here).
'use strict';
const Etcd = require('node-etcd');

const etcd = new Etcd(process.argv[2]);
const lines = [];

function errView(err) {
  if (!err) return null;
  return {message: err.message, errorCode: err.errorCode === undefined ? null : err.errorCode,
          error: err.error === undefined ? null : err.error};
}

function step(name, call) {
  return new Promise((resolve) => call((err, val) => {
    lines.push(JSON.stringify({step: name, err: errView(err), val: val === undefined ? null : val}));
    resolve();
  }));
}

function watchOnce(name, start, trigger) {
  return new Promise((resolve) => {
    start((err, val) => {
      lines.push(JSON.stringify({step: name, err: errView(err), val: val}));
      resolve();
    });
    setTimeout(trigger, 200);
  });
}

(async () => {
  await step('set', (cb) => etcd.set('k1', 'v1', cb));
  await step('get', (cb) => etcd.get('k1', cb));
  await step('set again', (cb) => etcd.set('/k1', 'v1 \u00e9\u00e8 & = ?', cb));
  await step('set ttl', (cb) => etcd.set('k2', 'v2', {ttl: 100}, cb));
  await step('get missing', (cb) => etcd.get('nope', cb));
  await step('mkdir', (cb) => etcd.mkdir('d', cb));
  await step('mkdir again', (cb) => etcd.mkdir('d', cb));
  await step('create', (cb) => etcd.create('q', 'job1', cb));
  await step('create again', (cb) => etcd.post('q', 'job2', cb));
  await step('get sorted', (cb) => etcd.get('q', {sorted: true}, cb));
  await step('set in dir', (cb) => etcd.set('d/a', 'A', cb));
  await step('set hidden', (cb) => etcd.set('d/_h', 'H', cb));
  await step('get recursive', (cb) => etcd.get('/', {recursive: true, sorted: true}, cb));
  await step('cas', (cb) => etcd.compareAndSwap('k1', 'v1b', 'v1 \u00e9\u00e8 & = ?', cb));
  await step('cas wrong value', (cb) => etcd.testAndSet('k1', 'x', 'nope', cb));
  await step('cas prevIndex', (cb) => etcd.set('k1', 'x', {prevIndex: 1}, cb));
  await step('cad wrong value', (cb) => etcd.compareAndDelete('k1', 'nope', cb));
  await step('cad', (cb) => etcd.testAndDelete('k1', 'v1b', cb));
  await step('create only', (cb) => etcd.set('k2', 'x', {prevExist: false}, cb));
  await step('update only', (cb) => etcd.set('k3', 'x', {prevExist: true}, cb));
  await step('refresh ttl', (cb) => etcd.set('k2', null, {ttl: 50, refresh: true, prevExist: true}, cb));
  await step('clear ttl', (cb) => etcd.set('k2', 'v2', {ttl: ''}, cb));
  await step('bad ttl', (cb) => etcd.set('k2', 'v2', {ttl: 'abc'}, cb));
  await step('rmdir not empty', (cb) => etcd.rmdir('d', cb));
  await step('rmdir recursive', (cb) => etcd.rmdir('d', {recursive: true}, cb));
  await step('del a directory', (cb) => etcd.del('q', cb));
  await step('del recursive', (cb) => etcd.del('q', {recursive: true}, cb));
  await step('raw', (cb) => etcd.raw('PUT', 'v2/keys/raw', 'rv', {}, cb));
  await step('version', (cb) => etcd.version(cb));
  await step('leaderStats', (cb) => etcd.leaderStats((e, v) => cb(e, v && Object.keys(v).sort())));
  await step('selfStats', (cb) => etcd.selfStats((e, v) => cb(e, v && Object.keys(v).sort())));
  await step('machines', (cb) => etcd.machines(cb));
  await step('leader', (cb) => etcd.leader(cb));

  await watchOnce('watch', (cb) => etcd.watch('wk', cb), () => etcd.set('wk', 'w1', () => {}));
  await watchOnce('watch recursive', (cb) => etcd.watch('wd', {recursive: true}, cb),
                  () => etcd.set('wd/x/y', 'z', () => {}));
  await step('watchIndex past', (cb) => etcd.watchIndex('wk', 1, cb));

  // The Watcher object: follows a directory across several changes, then is stopped.
  await new Promise((resolve) => {
    const w = etcd.watcher('wd', null, {recursive: true});
    let n = 0;
    w.on('change', (v) => {
      lines.push(JSON.stringify({step: 'watcher change', err: null, val: v}));
      if (++n === 4) {
        w.stop();
        resolve();
      }
    });
    w.on('error', (e) => lines.push(JSON.stringify({step: 'watcher error', err: String(e), val: null})));
    w.on('reconnect', (e) => lines.push(JSON.stringify({step: 'watcher reconnect', err: String(e), val: null})));
    setTimeout(() => etcd.set('wd/a', '1', () => etcd.set('wd/b', '2', {ttl: 60}, () =>
      etcd.del('wd/a', () => etcd.rmdir('wd/x', {recursive: true}, () => {})))), 200);
  });
  // A Watcher started at an index of the past replays from there.
  await new Promise((resolve) => {
    const w = etcd.watcher('wk', 1);
    w.on('change', (v) => {
      lines.push(JSON.stringify({step: 'watcher from index 1', err: null, val: v}));
      w.stop();
      resolve();
    });
  });
  process.stdout.write(lines.join('\n') + '\n');
  process.exit(0);
})();
