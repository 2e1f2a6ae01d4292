// Tests run TypeScript through tsx. test/hooks.ts holds the root hooks that
// stop every server a fixture started. Timeouts are generous: these tests
// start real servers on a 2-core machine.
//
// Two tiers:
//   *.unit.test.ts  the fast tier (`npm run test:unit`): pure modules and the
//                   workflow with mocked activities; seconds, not minutes.
//   *.test.ts       the rest: real servers (Temporal, MariaDB, moto, nginx).
// `npm test` runs the fast tier first, then the rest.
// `npx mocha test/ingress` (a folder or files) runs only those: mocha would
// otherwise add the default spec to them.
const given = process.argv.slice(2).filter((a) => !a.startsWith('-') && /^(\.\/)?test\//.test(a));
const unitOnly = process.env.IMAGO_TIER === 'unit';
const integrationOnly = process.env.IMAGO_TIER === 'integration';
module.exports = {
  require: ['tsx/cjs', 'test/hooks.ts'],
  extension: ['ts'],
  spec: given.length ? [] : [unitOnly ? 'test/**/*.unit.test.ts' : 'test/**/*.test.ts'],
  recursive: true,
  ignore: ['node_modules/**', ...(integrationOnly && !given.length ? ['test/**/*.unit.test.ts'] : [])],
  timeout: unitOnly ? 30000 : 120000,
  slow: unitOnly ? 500 : 5000,
  // No --exit: a run ends when nothing is left open; a handle a test leaves open fails the run
  // 30 s after its end, named (test/hooks.ts), instead of being hidden.
  exit: false,
};
