/**
 * What the ComfyUI instances can run (node classes, model files), read by the gpu role from each instance's
 * /object_info and published in Redis for the API's check at submit and for operators.
 */
export {
  capabilitiesFromObjectInfo,
  summarizeCapabilities,
  type CapabilitySummary,
  type InstanceCapabilities,
} from './instance-capabilities';
export { canRun, describeMissing, missingOn, type MissingCapability } from './capability-match';
export { PoolCapabilityStore, type InstanceCapabilityAdvert } from './pool-capability.store';
export { describeRefusal, judgeFleet, refusedByFleet, type FleetVerdict, type RefusalReason } from './fleet-verdict';
