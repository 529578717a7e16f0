export { trainEpochDataParallel, shardSizes } from './dataParallelEpoch';
export { ReplicaPool, sharedReplicaPool, closeSharedReplicaPool, replicaScriptPath } from './pool';
export { coreCount, parseWorkers, resolveWorkers, type WorkersChoice } from './workerCount';
