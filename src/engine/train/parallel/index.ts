export { trainEpochDataParallel, shardSizes, lastDataParallelProfile, type StepProfile } from './dataParallelEpoch';
export { ReplicaPool, sharedReplicaPool, closeSharedReplicaPool, replicaScriptPath } from './pool';
export { coreCount, parseWorkers, resolveWorkers, type WorkersChoice } from './workerCount';
