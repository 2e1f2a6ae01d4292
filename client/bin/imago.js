#!/usr/bin/env node
// Launcher for the `imago` command: TypeScript runs through tsx.
'use strict';
require('tsx/cjs');
require('../cli.ts').main();
