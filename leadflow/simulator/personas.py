"""Who visits: the personas of the traffic simulator, as data.

Each persona is a frozen description of one kind of visitor: how they are identified (email
domain, title, company), how they browse (page types, session counts, forms they fill) and
how sales ends up dispositioning them. ``sessions.py`` turns a persona plus a seeded
``random.Random`` into a journey of input events; nothing here draws random numbers itself
except ``Identity.draw`` which takes the generator it must use.

Outcomes the defaults are tuned for (with ``config/scoring-model.yaml``):

=================== ========================================= =============================
persona             what they do                              what leadflow should do
=================== ========================================= =============================
enterprise_buyer    Director+/VP at 1k-50k ICP companies,     MQL (often fast track), P1
                    pricing/ROI/demo pages, demo request
smb_buyer           managers/founders at 10-200 companies,    some MQL (P2 content/webinar,
                    pricing, content, webinars                 P1 pricing form), rest nurture
student             gmail or .edu, "Student"/"Intern",        nurture; the odd .edu one
                    blog/docs/careers, downloads              slips through -> rejected not_icp
competitor          competitor domains, pricing/product/docs  never MQL (blocked domain)
bot                 honeypot filled or form in < 2 s          disqualified (bot signal)
gmail_researcher    free mailbox, blog/docs, webinars         nurture only (free email)
existing_customer   customers' domains (roster account        MQL via contact sales, routed
                    owners), docs, email clicks                to the account owner, rejected
                                                               already_customer
=================== ========================================= =============================
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

FIRST_NAMES = (
    "Dana",
    "Alex",
    "Sam",
    "Priya",
    "Jonas",
    "Mei",
    "Lucas",
    "Amara",
    "Noah",
    "Ines",
    "Omar",
    "Sofia",
    "Kenji",
    "Lena",
    "Mateo",
    "Aisha",
    "Erik",
    "Chloe",
    "Ravi",
    "Nora",
    "Tomas",
    "Yuki",
    "Hannah",
    "Diego",
    "Freya",
    "Kofi",
    "Elena",
    "Marek",
    "Zara",
    "Ben",
)
LAST_NAMES = (
    "Reyes",
    "Okafor",
    "Lindqvist",
    "Patel",
    "Novak",
    "Chen",
    "Moreau",
    "Schmidt",
    "Garcia",
    "Kowalski",
    "Nguyen",
    "Rossi",
    "Tanaka",
    "Brown",
    "Haddad",
    "Jensen",
    "Silva",
    "Kim",
    "Murphy",
    "Fischer",
    "Dubois",
    "Costa",
    "Ivanova",
    "Walsh",
    "Berg",
    "Sato",
    "Mensah",
)
_COMPANY_A = (
    "Bright",
    "North",
    "Blue",
    "Iron",
    "Silver",
    "Clear",
    "Rapid",
    "Summit",
    "Green",
    "Quantum",
    "Harbor",
    "Atlas",
    "Pioneer",
    "Vertex",
    "Cobalt",
    "Maple",
    "Orbit",
    "Granite",
    "Nimbus",
)
_COMPANY_B = (
    "wave",
    "field",
    "stone",
    "bridge",
    "path",
    "works",
    "logic",
    "point",
    "scale",
    "grid",
    "line",
    "forge",
    "craft",
    "peak",
    "river",
    "sight",
    "stack",
    "loop",
)
_COMPANY_SUFFIX = ("Systems", "Labs", "Software", "Group", "Technologies", "Analytics", "Cloud", "Inc")

UNIVERSITIES = ("state-university.edu", "tech-institute.edu", "uni-example.ac.uk", "college.edu")
FREE_EMAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me")
COMPETITORS = ("rivalflow.io", "pipelinepro.com", "leadgrid.example")
# Customers' domains; the first three have named account owners in config/roster.yaml.
CUSTOMER_DOMAINS = (
    ("acme-logistics.com", "Acme Logistics", "logistics", 1200, "US"),
    ("northwind.io", "Northwind", "software", 450, "US"),
    ("globex.de", "Globex", "manufacturing", 3000, "DE"),
    ("initech.com", "Initech", "software", 800, "US"),
    ("umbrella.co.uk", "Umbrella", "financial services", 2500, "GB"),
)
CONTENT_TITLES = (
    "The 2025 Lead Response Benchmark",
    "Speed-to-Lead Playbook",
    "Scoring Models That Decay",
    "RevOps Audit Checklist",
    "Routing Without Dead Queues",
    "MQL to SQL: A Field Guide",
)
WEBINAR_TITLES = ("Fixing the MQL handoff", "Live demo: routing in seconds", "SLA escalations that work")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a visitor turns out to be, once they fill a form."""

    email: str
    first_name: str
    last_name: str
    job_title: str | None
    company: str | None
    company_size: int | None
    industry: str | None
    country: str | None
    domain: str


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    weight: float  # share of new visitors in the default mix
    # -- identity
    titles: tuple[str, ...]
    industries: tuple[str | None, ...]  # None: no industry given
    countries: tuple[str, ...]
    company_size: tuple[int, int] | None  # uniform range; None = not given on forms
    domain_kind: str  # company | free | university | competitor | customer | mixed_student
    # -- behaviour
    sessions: tuple[int, int]  # number of web sessions (inclusive range)
    pages_per_session: tuple[int, int]
    page_weights: Mapping[str, float]  # page_type -> weight
    form_prob: float  # probability that a session ends with a form (one form per session max)
    form_weights: Mapping[str, float]  # form_kind -> weight
    email_engagement: Mapping[str, float]  # activity_kind -> expected count after identification
    anonymous_first: float  # probability the first session is anonymous until the form
    utm: tuple[tuple[str | None, str | None], ...]  # (utm_source, utm_medium) options
    hidden_lead_source: tuple[str | None, ...] = ("web",)
    # -- bots
    honeypot_prob: float = 0.0
    fast_fill_prob: float = 0.0
    # -- sales outcome once touched: status -> weight; "rejected:<disposition>" or "rejected:" (missing)
    outcomes: Mapping[str, float] = field(default_factory=dict)

    def draw_identity(self, rng: random.Random, serial: int) -> Identity:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        title = rng.choice(self.titles) if self.titles else None
        industry = rng.choice(self.industries) if self.industries else None
        country = rng.choice(self.countries) if self.countries else None
        size = rng.randint(*self.company_size) if self.company_size else None
        company: str | None
        kind = self.domain_kind
        if kind == "mixed_student":
            kind = "university" if rng.random() < 0.35 else "free"
        if kind == "company":
            stem = rng.choice(_COMPANY_A) + rng.choice(_COMPANY_B)
            company = f"{stem} {rng.choice(_COMPANY_SUFFIX)}"
            domain = (
                f"{stem.lower()}{serial % 97}.example.com"
                if rng.random() < 0.5
                else f"{stem.lower()}-{serial % 89}.com"
            )
        elif kind == "free":
            domain, company = rng.choice(FREE_EMAIL), (None if rng.random() < 0.6 else "Self-employed")
        elif kind == "university":
            domain = rng.choice(UNIVERSITIES)
            company, size = domain.split(".")[0].replace("-", " ").title(), rng.choice((None, 20000))
            industry = "education"
        elif kind == "competitor":
            domain = rng.choice(COMPETITORS)
            company = domain.split(".")[0].title()
        elif kind == "customer":
            domain, company, industry, size, country = rng.choice(CUSTOMER_DOMAINS)
        else:  # pragma: no cover - persona table is static
            raise ValueError(f"unknown domain kind {kind!r}")
        local = f"{first}.{last}{serial}".lower()  # the serial keeps distinct people distinct
        return Identity(
            email=f"{local}@{domain}",
            first_name=first,
            last_name=last,
            job_title=title,
            company=company,
            company_size=size,
            industry=industry,
            country=country,
            domain=domain,
        )


def _m(**weights: float) -> Mapping[str, float]:
    return MappingProxyType(dict(weights))


PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="enterprise_buyer",
        weight=0.12,
        titles=(
            "Director of Sales Operations",
            "VP Marketing",
            "Head of Revenue Operations",
            "Chief Revenue Officer",
            "Director of IT",
            "VP Sales",
        ),
        industries=("software", "saas", "fintech", "financial services", "information technology"),
        countries=("US", "US", "US", "GB", "DE", "CA", "NL", "FR", "AU", "SE"),
        company_size=(1000, 50000),
        domain_kind="company",
        sessions=(1, 3),
        pages_per_session=(3, 7),
        page_weights=_m(pricing=5, product=4, roi_calculator=2, demo=3, docs=1, blog=1),
        form_prob=0.8,
        form_weights=_m(demo_request=5, contact_sales=3, pricing_form=2, chat=2, event_badge_scan=1),
        email_engagement=_m(email_open=3, email_click=1.2, webinar_attended=0.3),
        anonymous_first=0.7,
        utm=(("google", "cpc"), ("linkedin", "paid_social"), ("g2", "referral"), (None, None), ("newsletter", "email")),
        hidden_lead_source=("web", "paid_search", "event"),
        outcomes=_m(
            **{
                "accepted": 4,
                "sql": 3,
                "meeting_booked": 2,
                "rejected:not_now": 1,
                "rejected:no_response": 0.6,
                "rejected:": 0.4,
            }
        ),
    ),
    Persona(
        name="smb_buyer",
        weight=0.22,
        titles=("Marketing Manager", "Founder", "Sales Manager", "Operations Lead", "Head of Growth", "Owner and CEO"),
        industries=("software", "e-commerce", "professional services", "retail", "marketing"),
        countries=("US", "US", "GB", "CA", "AU", "DE", "IE", "ES", "BR", "IN"),
        company_size=(10, 200),
        domain_kind="company",
        sessions=(1, 4),
        pages_per_session=(2, 6),
        page_weights=_m(pricing=3, product=3, blog=3, docs=1, demo=1, other=1),
        form_prob=0.55,
        form_weights=_m(
            content_download=4, webinar_registration=3, pricing_form=2, newsletter=2, demo_request=1, chat=1
        ),
        email_engagement=_m(email_open=4, email_click=1.5, webinar_attended=0.5, content_download=0.5),
        anonymous_first=0.8,
        utm=(
            ("google", "organic"),
            ("google", "cpc"),
            ("facebook", "paid_social"),
            ("capterra", "referral"),
            (None, None),
        ),
        hidden_lead_source=("web", "content_syndication"),
        outcomes=_m(
            **{
                "accepted": 3,
                "meeting_booked": 2,
                "sql": 1,
                "rejected:not_now": 2,
                "rejected:no_response": 1.5,
                "rejected:not_icp": 1,
                "rejected:": 0.6,
            }
        ),
    ),
    Persona(
        name="student",
        weight=0.08,
        titles=("Student", "Intern", "MBA Candidate", "Research Assistant"),
        industries=("education",),
        countries=("US", "GB", "IN", "DE", "FR", "BR"),
        company_size=None,
        domain_kind="mixed_student",
        sessions=(1, 3),
        pages_per_session=(2, 6),
        page_weights=_m(blog=5, docs=2, careers=3, pricing=1, product=1),
        form_prob=0.35,
        form_weights=_m(content_download=4, newsletter=3, webinar_registration=2),
        email_engagement=_m(email_open=2, unsubscribe=0.3),
        anonymous_first=0.9,
        utm=(("google", "organic"), (None, None), ("twitter", "social")),
        outcomes=_m(**{"rejected:not_icp": 5, "rejected:": 1}),
    ),
    Persona(
        name="competitor",
        weight=0.04,
        titles=("Product Manager", "Product Marketing Manager", "Competitive Intelligence Analyst"),
        industries=("software",),
        countries=("US", "GB"),
        company_size=(200, 2000),
        domain_kind="competitor",
        sessions=(2, 4),
        pages_per_session=(3, 8),
        page_weights=_m(pricing=5, product=5, docs=3, roi_calculator=1, demo=2),
        form_prob=0.3,
        form_weights=_m(content_download=3, webinar_registration=2, demo_request=1),
        email_engagement=_m(email_open=2, email_click=1),
        anonymous_first=0.95,
        utm=((None, None), ("google", "organic")),
        outcomes=_m(**{"rejected:competitor": 5, "rejected:": 1}),
    ),
    Persona(
        name="bot",
        weight=0.06,
        titles=("asdf", "Manager", "CEO", "test"),
        industries=("software", "other"),
        countries=("US", "RU", "CN", "NG"),
        company_size=(1, 100000),
        domain_kind="company",
        sessions=(1, 1),
        pages_per_session=(1, 12),
        page_weights=_m(pricing=1, product=1, blog=1, docs=1, demo=1, careers=1, other=2),
        form_prob=0.9,
        form_weights=_m(demo_request=2, contact_sales=2, newsletter=2, content_download=2, chat=1),
        email_engagement=_m(),
        anonymous_first=1.0,
        utm=((None, None),),
        honeypot_prob=0.6,
        fast_fill_prob=0.5,
        outcomes=_m(**{"rejected:bot_or_test": 5, "rejected:bad_data": 1}),
    ),
    Persona(
        name="gmail_researcher",
        weight=0.18,
        titles=("Consultant", "Analyst", "Marketing Specialist", "Sales Director", "Freelancer"),
        industries=("professional services", "software", None),
        countries=("US", "GB", "IN", "CA", "AU", "DE"),
        company_size=(1, 50),
        domain_kind="free",
        sessions=(1, 4),
        pages_per_session=(2, 6),
        page_weights=_m(blog=5, docs=3, pricing=2, product=2),
        form_prob=0.4,
        form_weights=_m(content_download=4, webinar_registration=3, newsletter=3, demo_request=0.5),
        email_engagement=_m(email_open=3, email_click=0.8, webinar_attended=0.6, unsubscribe=0.15),
        anonymous_first=0.85,
        utm=(("google", "organic"), ("linkedin", "social"), (None, None), ("newsletter", "email")),
        outcomes=_m(**{"rejected:not_icp": 2, "rejected:not_now": 2, "accepted": 1, "rejected:": 0.5}),
    ),
    Persona(
        name="existing_customer",
        weight=0.06,
        titles=("Sales Operations Manager", "Director of Marketing", "VP Revenue", "Administrator"),
        industries=(),
        countries=(),
        company_size=None,
        domain_kind="customer",
        sessions=(1, 3),
        pages_per_session=(2, 5),
        page_weights=_m(docs=5, product=2, pricing=2, blog=1),
        form_prob=0.5,
        form_weights=_m(contact_sales=3, chat=2, webinar_registration=1, content_download=1),
        email_engagement=_m(email_open=4, email_click=2),
        anonymous_first=0.3,
        utm=((None, None), ("newsletter", "email")),
        hidden_lead_source=("web", "direct"),
        outcomes=_m(**{"rejected:already_customer": 5, "accepted": 1, "rejected:": 0.5}),
    ),
)

PERSONAS_BY_NAME: Mapping[str, Persona] = MappingProxyType({p.name: p for p in PERSONAS})
DEFAULT_MIX: Mapping[str, float] = MappingProxyType({p.name: p.weight for p in PERSONAS})


def parse_mix(text: str | None) -> dict[str, float]:
    """``"enterprise_buyer=3,bot=1"`` -> weights (unnamed personas get 0). ``None``/"" = default.

    Raises ValueError naming an unknown persona or a bad weight.
    """
    if not text:
        return dict(DEFAULT_MIX)
    mix = {name: 0.0 for name in PERSONAS_BY_NAME}
    for part in text.split(","):
        name, sep, raw = part.strip().partition("=")
        if name not in PERSONAS_BY_NAME:
            raise ValueError(f"unknown persona {name!r}; expected one of {', '.join(PERSONAS_BY_NAME)}")
        try:
            weight = float(raw) if sep else 1.0
        except ValueError:
            raise ValueError(f"persona {name}: weight {raw!r} is not a number") from None
        if weight < 0:
            raise ValueError(f"persona {name}: weight must be >= 0, got {weight}")
        mix[name] = weight
    if sum(mix.values()) <= 0:
        raise ValueError("persona mix: at least one weight must be > 0")
    return mix
