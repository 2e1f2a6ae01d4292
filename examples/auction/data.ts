/** Fixed vocabularies and a seeded PRNG shared by the seeder and the workload generator. */

export const REGIONS = [
  'AZ--Phoenix', 'CA--Los Angeles', 'CA--San Francisco', 'CO--Denver', 'FL--Miami', 'GA--Atlanta', 'IL--Chicago',
  'MA--Boston', 'MN--Minneapolis', 'NY--New York', 'OR--Portland', 'PA--Philadelphia', 'TX--Austin', 'TX--Houston',
  'WA--Seattle', 'DC--Washington',
] as const;

export const CATEGORIES = [
  'Antiques & Art', 'Books', 'Business, Office & Industrial', 'Clothing & Accessories', 'Coins', 'Collectibles',
  'Computers', 'Consumer Electronics', 'Dolls & Bears', 'Home & Garden', 'Jewelry, Gems & Watches', 'Movies & Television',
  'Music', 'Photo', 'Pottery & Glass', 'Sports', 'Stamps', 'Tickets & Travel', 'Toys & Hobbies', 'Everything Else',
] as const;

export const FIRST_NAMES = ['Ada', 'Alan', 'Barbara', 'Carlos', 'Dana', 'Edsger', 'Fran', 'Grace', 'Hedy', 'Ivan', 'Jun', 'Katherine', 'Leslie', 'Mary Ann', 'Niklaus', 'Olga'] as const;
export const LAST_NAMES = ['Lovelace', 'Turing', 'Liskov', 'Dijkstra', 'Allen', 'Hopper', 'Lamarr', 'Sutherland', 'Johnson', 'Lamport', 'Wirth', 'Ng', 'van Rossum', 'Hamilton'] as const;
export const ADJECTIVES = ['Red', 'Antique', 'Vintage', 'Rare', 'Shiny', 'Small', 'Large', 'Signed', 'Blue', 'Wooden', 'Golden', 'Silver'] as const;
export const NOUNS = ['lamp', 'clock', 'guitar', 'camera', 'vase', 'book', 'watch', 'chair', 'bicycle', 'poster', 'coin', 'radio'] as const;

/** The sample's seeded generator (lib/seeded-random.ts). */
export { seededRandom as rng } from '../../lib/seeded-random';
