/**
 * The pretext tasks' behaviour, by id: the registry line of each task module of this folder. Its
 * description (label, kind, classes, options) is its entry in src/shared/pretext-tasks.ts, which
 * every layer reads; the batch streams, engines and evaluation of src/trainer find what a task does
 * here.
 */
import {
  pretextTask,
  registerPretextTaskInfo,
  unregisterPretextTaskInfo,
  type BuiltinPretextTaskId,
  type PretextTaskInfo,
} from '../../../shared/pretext-tasks';
import type { PretextBehaviour } from './behaviour';
import { denoise } from './denoise';
import { flip } from './flip';
import { masked } from './masked';
import { nextSlice } from './next-slice';
import { rotation } from './rotation';

const BUILTIN = {
  masked,
  'next-slice': nextSlice,
  denoise,
  rotation,
  flip,
} satisfies Record<BuiltinPretextTaskId, PretextBehaviour>;

const behaviours = new Map<string, PretextBehaviour>(Object.entries(BUILTIN));

/** What the task of this id does; throws naming the known tasks when there is none. */
export function pretextBehaviour(id: string): PretextBehaviour {
  const b = behaviours.get(id);
  if (b) return b;
  pretextTask(id); // an unknown task: throws naming the known ones
  throw new Error(`pretext task '${id}' is described but has no behaviour registered`);
}

/** A task defined in one module: its description and what it does. */
export type PretextTask = PretextTaskInfo & Omit<PretextBehaviour, 'id'>;

/**
 * Registers a task at run time (plug-ins, tests): its description joins the shared list (the run
 * config accepts it, forms and the CLI list it) and its behaviour this registry. Returns the undo.
 */
export function registerPretextTask(task: PretextTask): () => void {
  const { example, pairedSlice, ...info } = task;
  registerPretextTaskInfo(info);
  behaviours.set(task.id, { id: task.id, example, pairedSlice });
  return () => {
    behaviours.delete(task.id);
    unregisterPretextTaskInfo(task.id);
  };
}
