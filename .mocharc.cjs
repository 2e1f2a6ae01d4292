// Tests run TypeScript through tsx. test/hooks.ts holds the root hooks that
// stop every server a fixture started. Timeouts are generous: these tests
// start real servers on a 2-core machine.
module.exports = {
  require: ['tsx/cjs', 'test/hooks.ts'],
  spec: ['test/**/*.test.ts'],
  ignore: ['node_modules/**'],
  timeout: 120000,
  slow: 5000,
  exit: false,
};
