// Our custom search attributes: operators find any run in the Temporal UI by these. They live
// beside the workflow because the workflow sets them (and the bundle may import only workflows/);
// the API side reads them from here too.
// temporal-config/search-attributes.json registers the same list on the compose cluster.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = [
  { name: 'TaskId', type: 'Keyword' },
  { name: 'UserId', type: 'Keyword' },
  { name: 'DeviceId', type: 'Keyword' },
  { name: 'WorkflowDefinitionId', type: 'Keyword' },
  { name: 'TaskStatus', type: 'Keyword' },
  { name: 'TaskPriority', type: 'Int' },
] as const satisfies ReadonlyArray<{ name: string; type: 'Keyword' | 'Int' }>;

export const SA = {
  TaskId: defineSearchAttributeKey('TaskId', SearchAttributeType.KEYWORD),
  UserId: defineSearchAttributeKey('UserId', SearchAttributeType.KEYWORD),
  DeviceId: defineSearchAttributeKey('DeviceId', SearchAttributeType.KEYWORD),
  WorkflowDefinitionId: defineSearchAttributeKey('WorkflowDefinitionId', SearchAttributeType.KEYWORD),
  TaskStatus: defineSearchAttributeKey('TaskStatus', SearchAttributeType.KEYWORD),
  TaskPriority: defineSearchAttributeKey('TaskPriority', SearchAttributeType.INT),
};

/** high sorts first in the UI and in lanes: a larger number is more urgent. */
export const PRIORITY_RANK = { high: 3, medium: 2, low: 1 } as const;
