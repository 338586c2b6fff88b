import { Arg, Ctx, Field, FieldResolver, ID, Int, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { actorOf, requireAdmin } from '../shared/auth';
import { badInput } from '../shared/errors';
import type { GraphQLContext } from '../shared/graphql/context';
import { PageInfo, connection, decodeCursor } from '../shared/graphql/pagination';
import { Discrepancy } from './discrepancy.entity';
import { DiscrepancyKind } from './matcher';
import { ReconciliationReport } from './reconciliation-report.entity';

@ObjectType()
export class DiscrepancyEdge {
  @Field() cursor!: string;
  @Field(() => Discrepancy) node!: Discrepancy;
}

@ObjectType()
export class DiscrepancyConnection {
  @Field(() => [DiscrepancyEdge]) edges!: DiscrepancyEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

/** Admin only, every operation: reconciliation reports, their discrepancies, running a day, accepting a discrepancy. */
@Resolver(() => ReconciliationReport)
export class ReconciliationResolver {
  /** The report of a provider's China day (`date` YYYY-MM-DD), or null when the day was never reconciled. */
  @Query(() => ReconciliationReport, { nullable: true })
  reconciliationReport(
    @Arg('provider') provider: string,
    @Arg('date') date: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ReconciliationReport | null> {
    requireAdmin(ctx.user);
    return ctx.services.reconciliation.report(provider, date);
  }

  /** Discrepancies of every report, newest first, filtered by provider, day, state (open, repaired, accepted) and kind. */
  @Query(() => DiscrepancyConnection)
  async discrepancies(
    @Ctx() ctx: GraphQLContext,
    @Arg('provider', () => String, { nullable: true }) provider?: string,
    @Arg('date', () => String, { nullable: true }) date?: string,
    @Arg('state', () => String, { nullable: true }) state?: string,
    @Arg('kind', () => DiscrepancyKind, { nullable: true }) kind?: DiscrepancyKind,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
  ): Promise<DiscrepancyConnection> {
    requireAdmin(ctx.user);
    const limit = first ?? 20;
    if (limit < 1 || limit > 100) throw badInput('first must be between 1 and 100');
    const rows = await ctx.services.reconciliation.listDiscrepancies({
      provider,
      date,
      state,
      kind,
      before: after ? decodeCursor(after) : null,
      limit,
    });
    return connection(rows.slice(0, limit), rows.length > limit);
  }

  /**
   * Fetches the provider's bill of that China day, matches it with the service's payments and refunds, repairs what a
   * provider query confirms, and answers the report. A bill that cannot be fetched or trusted answers
   * PAYMENT_PROVIDER_ERROR (with `billError`) and changes nothing.
   */
  @Mutation(() => ReconciliationReport)
  async reconcile(@Arg('provider') provider: string, @Arg('date') date: string, @Ctx() ctx: GraphQLContext): Promise<ReconciliationReport> {
    const admin = requireAdmin(ctx.user);
    return (await ctx.services.reconciliation.reconcile(provider, date, { actor: actorOf(admin) }))!;
  }

  /** An admin's decision on an open discrepancy: accepted as it is; `note` (1–500 characters) says why. */
  @Mutation(() => Discrepancy)
  acceptDiscrepancy(@Arg('id', () => ID) id: string, @Arg('note') note: string, @Ctx() ctx: GraphQLContext): Promise<Discrepancy> {
    const admin = requireAdmin(ctx.user);
    return ctx.services.reconciliation.accept(id, note, actorOf(admin));
  }

  @FieldResolver(() => [Discrepancy], { name: 'discrepancies', description: 'Everything found on this day, open or settled' })
  reportDiscrepancies(@Root() report: ReconciliationReport, @Ctx() ctx: GraphQLContext): Promise<Discrepancy[]> {
    return ctx.services.reconciliation.discrepanciesOf(report.id);
  }

  @FieldResolver(() => Int, { description: 'Discrepancies still open' })
  async openCount(@Root() report: ReconciliationReport, @Ctx() ctx: GraphQLContext): Promise<number> {
    return (await ctx.services.reconciliation.discrepanciesOf(report.id)).filter((d) => d.state === 'open').length;
  }
}
