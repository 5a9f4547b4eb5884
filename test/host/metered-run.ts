// The metering tests' way to run one export of a rewritten module on a budget: the fuel
// global set to the budget, the export called, and what it returned (null when it trapped)
// with the fuel it used. A module without a fuel global (rewritten without fuel) uses none.
import { FUEL_EXPORT } from '../../host/src/vm/metering.js';

export interface BudgetRun {
  /** What the export returned (0 for a void one); null when it trapped. */
  result: number | null;
  trapped: boolean;
  used: number;
  left: number;
}

export function budgetRunner(exports: WebAssembly.Exports, defaultBudget: number): (name: string, arg: number, budget?: number) => BudgetRun {
  const g = (exports[FUEL_EXPORT] as WebAssembly.Global | undefined) ?? { value: 0 };
  return (name, arg, budget = defaultBudget) => {
    g.value = budget;
    let result: number | null;
    try {
      result = (exports[name] as (x: number) => number | undefined)(arg) ?? 0;
    } catch {
      result = null;
    }
    const left = g.value as number;
    return { result, trapped: result === null, used: budget - left, left };
  };
}
