// The worker bundles this file: every workflow Imago runs is exported here.
export { upgradeWorkflow } from './upgrade';
