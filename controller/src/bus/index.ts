/** controller/src/bus: the controller's side of the NATS control plane. */
export { busConnectOptions, connectBus, type BusAuth } from './connect.js';
export { ensureControlPlane, DEFAULT_LIMITS, type ControlPlaneLimits } from './infra.js';
export { FileEpochStore, type EpochStore } from './epoch.js';
export { AgentRegistry, type AgentInfo, type NodeState, type RegistryEvent, type RegistryOptions } from './registry.js';
export { ReportConsumer, SeqTracker, type ReportHandler, type ReportMeta, type ReportStats, type ReportConsumerOptions } from './reports.js';
export { CommandClient, type SendOptions } from './commands.js';
export { launchPlan, stopPlan, ranksByNode, type LaunchRequest, type LaunchOutcome, type NodeOutcome } from './launcher.js';
export { natsServerConfig, controllerPermissions, agentPermissions, agentInbox, type Permissions, type NatsUser, type ServerConfigOptions } from './security.js';
