// dependency-cruiser's rules for host/src (run by test/host/import-cycles.test.ts):
// no import cycles, type-only imports included (they tie the layers together as much).
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles between host modules: move the shared piece down a layer (README "Layout").',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
  },
};
