// $banner$
//
// Message types, typed clients and actor skeletons for $file$: thin shims
// over the spawn TypeScript runtime ($ts_sdk$), whose typed layer
// (MessageCodec, ActorContract, ActorClient, registerActor) says what each
// name does. For each actor X: XContract, XClient, XHandlers, registerX.
$?ts_used$
import * as spawn from "$ts_sdk|js$";

/**
 * The descriptors of $file$ and its imports (a serialized
 * google.protobuf.FileDescriptorSet): the gateway serves its actors as plain
 * gRPC services and by reflection (docs/protocol.md, "Contracts").
 */
export const contractDescriptors: Uint8Array = Buffer.from("$contract_b64$", "base64");
$/ts_used$
$^ts_used$
export {};
$/ts_used$
$?ts_types$

// ---- message types ----

const spawnTypes = new spawn.TypeSet([
$#ts_types$
  ["$ts_full|js$", $ts_desc$],
$/ts_types$
]);
$/ts_types$
$#ts_types$
$?ts_is_enum$

/** enum $ts_full$ */
export const $ts_name$ = {
$#ts_values$
  $ts_value$: $ts_number$,
$/ts_values$
} as const;
export type $ts_name$ = (typeof $ts_name$)[keyof typeof $ts_name$];
$/ts_is_enum$
$^ts_is_enum$

/** message $ts_full$ */
export interface $ts_name$ {
$#ts_fields$
  $ts_field$$?ts_optional$?$/ts_optional$: $ts_ftype$;
$/ts_fields$
}
export const $ts_name$ = spawnTypes.codec<$ts_name$>("$ts_full|js$");
$/ts_is_enum$
$/ts_types$
$#actors$

// ---- actor $actor$ (service $actor_full$) ----

/** The contract of actor $actor$: its settings (0 ms = the gateway's default) and actions. */
export const $actor$Contract: spawn.ActorContract<$actor$Handlers$?has_state$, $state_ts$$/has_state$> = {
  name: "$actor|js$",
  kind: "$kind$",
  stateful: $?stateful$true$/stateful$$^stateful$false$/stateful$,
$?has_state$
  state: $state_ts$,
$/has_state$
  snapshotMs: $snapshot_interval_ms$,
  deactivateMs: $deactivate_timeout_ms$,
  actions: {
$#actions$
    "$action|js$": { method: "$ts_method$", input: $input_ts$, output: $output_ts$ },
$/actions$
  },
};

/** Typed client of actor $actor$ ($kind$). */
export class $actor$Client {
  readonly #actor: spawn.ActorClient;

  constructor(client: spawn.SpawnClient, system = "spawn-system") {
    this.#actor = new spawn.ActorClient(client, system, $actor$Contract);
  }
$#actions$

  /** $action$($input$) -> $output$ */
  $ts_method$(msg: spawn.DeepPartial<$input_ts$>, opts?: spawn.CallOptions): Promise<$output_ts$> {
    return this.#actor.call("$action|js$", $input_ts$, $output_ts$, msg, opts);
  }
$/actions$
}

/** The actions of actor $actor$, one handler each. */
export interface $actor$Handlers {
$#actions$
  /** $action$($input$) -> $output$ */
$?has_state$
  $ts_method$(state: $state_ts$, msg: $input_ts$, ctx: spawn.InvocationContext): spawn.ActionResult<$state_ts$, $output_ts$>;
$/has_state$
$^has_state$
  $ts_method$(msg: $input_ts$, ctx: spawn.InvocationContext): spawn.ReplyResult<$output_ts$>;
$/has_state$
$/actions$
}

/** Declares actor $actor$ on host with the settings of its contract, served by handlers. */
export function register$actor$(host: spawn.ActorHost, handlers: $actor$Handlers): spawn.ActorHost {
  host.addContract(contractDescriptors);
  return spawn.registerActor(host, $actor$Contract, handlers);
}
$/actors$
