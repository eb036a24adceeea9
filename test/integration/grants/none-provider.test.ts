import { noneProvider } from '../../../src/grants/none/none-provider.ts';
import { grantTarget, providerContract } from '../../support/provider-contract.ts';

// `none` records only: nothing outside changes, so there is no real state to read.
providerContract('none', async () => {
  const provider = noneProvider.create({});
  if (typeof provider === 'string') throw new Error(provider);
  return { provider, target: grantTarget({}) };
});
