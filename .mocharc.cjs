// Tests run TypeScript through tsx. test/hooks.ts holds the root hooks that
// stop every server a fixture started. Timeouts are generous: these tests
// start real servers on a 2-core machine.
// `npx mocha` runs the whole suite; `npx mocha test/ingress` (a folder or
// files) runs only those: mocha would otherwise add the default spec to them.
const given = process.argv.slice(2).filter((a) => !a.startsWith('-') && /^(\.\/)?test\//.test(a));
module.exports = {
  require: ['tsx/cjs', 'test/hooks.ts'],
  extension: ['ts'],
  spec: given.length ? [] : ['test/**/*.test.ts'],
  recursive: true,
  ignore: ['node_modules/**'],
  timeout: 120000,
  slow: 5000,
  // Exit when the run (and the root hooks' clean-up) is done, even if a stray handle is open.
  exit: true,
};
