"""Generate persona-lab's built-in PrefEval filler: ``persona_lab/data/prefeval/filler.json``.

PrefEval puts the first N user/assistant pairs of a fixed, item-independent list of unrelated chat
sessions between a stated preference and the question that tests it. This script composes such a
list from hand-written material (worked physics, math, chemistry, electronics and statistics
problems with computed answers; spreadsheet, SQL and grammar help; short explainers on geology,
astronomy, weather, oceans, technology, programming and board games). The topics deliberately
avoid everything the built-in dataset asks about (food, fitness, lodging, transport, music, books,
gifts, study habits, work routines, pets and the home), so the filler never hints at a preference.

The output is deterministic: one seeded ``random.Random`` drives every choice, so running the script
again reproduces the committed file byte for byte (a test checks this).

Usage::

    python tools/make_filler.py            # (re)write the packaged filler.json and print its size
    python tools/make_filler.py --check    # exit 1 if the packaged file is out of date
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

SEED = 20250501
TARGET_PAIRS = 320
TARGET_CHARS = 4 * 107_000  # about 107k tokens at 4 characters per token
OUT = Path(__file__).resolve().parents[1] / "persona_lab" / "data" / "prefeval" / "filler.json"

Pair = tuple[str, str]
G = 9.81

OPENERS = [
    "", "", "", "Hi! ", "Hello! ", "Quick question. ", "Can you help me with this? ", "Hey! ",
    "I'm stuck on something. ", "Good evening! ", "Hi there! ", "Morning! ",
]
FOLLOW_OPENERS = [
    "Thanks, that helps. ", "Got it. ", "That makes sense. ", "Great, thank you. ", "OK, follow-up: ",
    "Perfect. ", "Nice, I see it now. ", "Thanks! ", "One more thing: ", "Understood. ",
]


def _opener(rng: random.Random) -> str:
    return rng.choice(OPENERS)


def _follow(rng: random.Random) -> str:
    return rng.choice(FOLLOW_OPENERS)


def _num(x: float, nd: int = 2) -> str:
    """Format a number with ``nd`` decimals, trimming a useless ``.00``."""
    text = f"{x:.{nd}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text.replace("-", "−")


def _poly(coeffs: list[int], var: str = "x") -> str:
    """Render integer polynomial coefficients (highest degree first) as readable text."""
    deg = len(coeffs) - 1
    parts: list[str] = []
    for i, c in enumerate(coeffs):
        p = deg - i
        if c == 0:
            continue
        mag = abs(c)
        body = "" if (mag == 1 and p > 0) else str(mag)
        if p >= 2:
            body += f"{var}²" if p == 2 else f"{var}³"
        elif p == 1:
            body += var
        sign = "−" if c < 0 else "+"
        parts.append(("−" if c < 0 else "") + body if not parts else f" {sign} {body}")
    return "".join(parts) or "0"


def _n(v: int) -> str:
    """An integer with a typographic minus sign."""
    return str(v).replace("-", "−")


def _p(v: int) -> str:
    """An integer, bracketed when negative, for use inside products and sums."""
    return f"({_n(v)})" if v < 0 else str(v)


def _expr(terms: list[tuple[int, str]]) -> str:
    """Render ``c₁·t₁ + c₂·t₂ + ...`` with tidy signs, skipping zero coefficients."""
    out = ""
    for coef, body in terms:
        if coef == 0:
            continue
        if not out:
            out = f"{_n(coef)}{body}"
        else:
            out += f" {'+' if coef > 0 else '−'} {abs(coef)}{body}"
    return out or "0"


def _shift(var: str, v: float) -> str:
    """``(var − v)`` written with the right sign."""
    return f"{var} {'−' if v >= 0 else '+'} {_num(abs(v))}"


# Extra paragraphs a tutor might add after a worked answer; one or two are appended at random.
TIPS: dict[str, list[str]] = {
    "physics": [
        ("Keep in mind what 'ignore air resistance' really means: the model treats the object as a point moving in a vacuum. That's excellent for dense, compact objects at modest speeds, and poor for anything light, large or fast, like a feather, a parachute or a long-range shot."),
        ("If you're revising for a test, the four constant-acceleration equations are worth knowing cold: v = u + at, s = ut + ½at², v² = u² + 2as and s = ½(u + v)t. Each leaves out one of the five quantities, so pick the one that doesn't contain the quantity you neither know nor need."),
        ('A free-body diagram should show only forces acting on the object itself, each drawn from the object. Leaving out the reaction forces that act on other bodies avoids a whole class of double-counting errors.'),
        ('Graphs are a powerful check too. For constant acceleration, a velocity-time graph is a straight line whose slope is the acceleration and whose area is the displacement, so you can verify an answer by sketching it.'),
        ("A habit that saves a lot of marks: before touching any formula, list the knowns and unknowns with their "
         "units and pick a sign convention (which direction is positive). Most kinematics errors are not algebra "
         "errors but a velocity or acceleration entered with the wrong sign."),
        ("It's worth checking limiting cases once you have a formula. If you set the angle, the friction or the "
         "initial speed to zero, does the result reduce to something you already know? If it doesn't, there's a "
         "mistake somewhere, even before you plug in numbers."),
        ("On significant figures: the data here are given to two or three figures, so quoting the answer to more "
         "than three is false precision. Keep extra digits in intermediate steps, though, and round only at the "
         "end, or rounding errors can pile up."),
        ("If your course uses g = 9.8 or even 10 m/s², your numbers will differ slightly in the second or third "
         "digit. That's expected; examiners normally accept either as long as you state the value you used."),
        ("Drawing a quick sketch, even a rough one, really helps with these problems. Mark the origin, the "
         "positive direction and every force or velocity as an arrow. Once the picture is right, the equations "
         "usually write themselves."),
        ("A useful cross-check is energy conservation. Where friction and drag are ignored, the loss in potential "
         "energy mgh equals the gain in kinetic energy ½mv², so v = √(2gh) independently of the path taken. If a "
         "kinematics answer disagrees with the energy answer, one of them has an error."),
        ("Dimensional analysis is the fastest sanity check there is: every term you add must have the same "
         "units, and the final answer must come out in the unit you expect. A time that comes out in m/s, for "
         "example, means a division went the wrong way."),
        ("For exam practice, try re-solving the problem symbolically before using any numbers. A formula in terms "
         "of h, g, m and θ shows you immediately which quantities matter and which cancel, and it makes "
         "follow-up questions much quicker."),
    ],
    "electronics": [
        ("For LEDs in particular, brightness depends on current, not voltage, which is why they're always driven through something that limits current: a resistor for simple circuits, a constant-current driver for high-power LEDs."),
        ('Color codes on through-hole resistors are easy to misread under poor light; brown and red, or red and orange, look alike. Checking each one with a meter before soldering takes seconds and saves debugging time.'),
        ("If you're powering this from a microcontroller pin rather than a supply rail, check the pin's current limit, typically 10 to 25 mA on small boards, and remember that the pin voltage drops a little under load."),
        ("When in doubt, measure. A multimeter across the resistor tells you the actual voltage drop, and dividing "
         "by the resistance gives the real current, which is often slightly different from the calculation "
         "because component values have tolerances of 1 to 5%."),
        ("Resistor tolerances matter more than people expect: a 5% resistor can be anywhere in a 10% window. For "
         "anything that needs accuracy, use 1% metal-film parts, or measure and select individual resistors."),
        ("Always think about power as well as resistance. P = V²/R = I²R, and a resistor running near its rating "
         "gets hot enough to drift in value or, eventually, fail. Derating to about half the rated power is a "
         "sensible habit."),
        ("If you're building this on a breadboard, double-check the orientation of polarized parts. LEDs have a "
         "longer leg (anode, positive) and a flat edge on the cathode side; getting it backwards simply means "
         "nothing lights, but electrolytic capacitors can be damaged."),
        ("Kirchhoff's laws are the universal check for any circuit: the currents entering a node equal those "
         "leaving it, and the voltage rises and drops around any closed loop add up to zero. If your numbers "
         "satisfy both, they're almost certainly right."),
        ("Simulators such as the free SPICE-based tools are great for checking hand calculations. Enter the "
         "circuit, run a DC operating-point analysis and compare; differences usually point straight at a wrong "
         "assumption."),
        ("Keep in mind that real supplies aren't perfect. A battery's voltage sags as it discharges and under "
         "load, so a design that works at 9 V might misbehave at 7.5 V. Checking the circuit at the lowest "
         "expected supply voltage avoids surprises."),
    ],
    "math": [
        ("It often helps to say out loud what each step does: 'multiply both sides by 2', 'subtract the second equation'. Narrating the operation makes it much harder to apply it to only one side by accident."),
        ("When a question says 'show your working', the method is being marked as much as the answer. A clear line of reasoning with one arithmetic slip usually scores better than a correct number with no explanation."),
        ('Online tools can check your algebra, but try each problem on paper first. Use the tool afterwards to confirm, and if it disagrees, find the exact line where your working diverges.'),
        ("Whenever you solve an equation, substitute your answer back into the original. It takes thirty seconds "
         "and catches the majority of slips, especially sign errors in the middle steps."),
        ("Graphing the function, even roughly or with a free graphing tool, is a good way to see whether an "
         "answer makes sense. Roots, turning points and intercepts should all match what the algebra said."),
        ("Write every step on its own line rather than doing two operations at once. It feels slower, but it "
         "makes mistakes easy to find, and teachers can award method marks even if the final number is off."),
        ("Brackets are your friend around negative numbers. Writing (−3)² instead of −3² avoids one of the most "
         "common errors, since −3² means −(3²) = −9, while (−3)² = 9."),
        ("If you get stuck, try a simpler version of the same problem with small numbers. Seeing the pattern in "
         "an easy case often shows you what to do in the real one."),
        ("Exact forms are often preferable to decimals in algebra. Keep √2 or 1/3 as they are until the very end; "
         "converting too early introduces rounding and hides simplifications."),
        ("For practice, make up your own problems by working backwards: choose the answer first, build an "
         "equation that has it as a solution, then solve it as if you didn't know. It's the same trick teachers "
         "use to write exercises with tidy answers."),
    ],
    "statistics": [
        ('Rounding matters in statistics homework: keep full precision in intermediate sums and squared deviations, and round only the reported results. Rounding the mean early can change the standard deviation noticeably.'),
        ('If your course uses a calculator, look for two standard-deviation keys, usually labelled σx (population) and sx or σx−1 (sample). Picking the wrong one is the most common reason for a small mismatch with the answer key.'),
        ("Always look at the data before summarizing it. A simple dot plot or histogram shows skew, clusters and "
         "unusual values that a single mean can hide."),
        ("The median and the interquartile range are resistant to outliers, while the mean and standard deviation "
         "are not. When the two pictures disagree, report both and say why."),
        ("In spreadsheets, AVERAGE, MEDIAN, STDEV.S and STDEV.P give these numbers directly. In Python, the "
         "built-in statistics module has mean, median and stdev (sample) and pstdev (population)."),
        ("Be careful with the word 'average' in reports; it can mean the mean, the median or even the mode. "
         "Saying exactly which statistic you used removes the ambiguity."),
        ("Standard deviation is in the same units as the data, which makes it easier to interpret than the "
         "variance. Roughly, for bell-shaped data, about two thirds of values fall within one standard deviation "
         "of the mean and about 95% within two."),
        ("A small sample gives a noisy estimate of the spread. With fewer than about ten values, the standard "
         "deviation can easily be off by a third or more, so treat it as a rough guide."),
    ],
    "probability": [
        ('Probabilities must always end up between 0 and 1, and the probabilities of all possible outcomes must add to 1. Checking both takes a moment and catches many counting mistakes.'),
        ("For probability questions, writing out the sample space explicitly, even if it's a small table, "
         "prevents most counting errors. Once the pattern is clear, switch to a formula."),
        ("Independence is the assumption that does the heavy lifting in many of these calculations. Dice and "
         "coin flips are independent, but drawing cards without replacement is not, which is why the second "
         "probability in a card problem is conditional on the first."),
        ("The complement rule, P(not A) = 1 − P(A), is the single most useful shortcut in elementary probability. "
         "Any time a question says 'at least one', calculating the chance of 'none' first is usually easier."),
        ("Expected value is a natural next step from here: multiply each outcome by its probability and add. It "
         "tells you the long-run average of a repeated experiment, even though no single trial needs to equal it."),
    ],
    "pandas": [
        ("In pandas, it's worth checking df.dtypes right after loading a file. Numbers read as text (object dtype) "
         "or dates read as strings are the cause of most puzzling results in a groupby."),
        ("df.info() and df.describe() give a quick overview of a new data set: missing values per column, types, "
         "and summary statistics, which is a good first step before any grouping or filtering."),
        ("Method chaining, with each step on its own line inside parentheses as above, keeps pandas code readable "
         "and avoids a trail of temporary variables. It also makes it easy to comment out one step while debugging."),
    ],
    "computing": [
        ("Most languages have built-ins for these conversions: in Python, bin(), hex() and int('1011', 2) do the "
         "work, and format(n, '08b') pads to a fixed width. Doing it by hand a few times is still the best way to "
         "understand what they do."),
        ("A handy shortcut is to memorize the powers of two up to 2¹⁰ = 1024 and the sixteen hex digits with their "
         "four-bit patterns. With those, most conversions can be done in your head."),
        ("Hexadecimal is popular precisely because one hex digit is exactly four bits. That's why memory addresses, "
         "color codes and byte dumps are written in hex: it's compact but still maps cleanly onto the underlying "
         "binary."),
        ("Two's complement is used almost universally because addition and subtraction work the same way for "
         "signed and unsigned numbers; the hardware doesn't need a separate circuit for negatives."),
    ],
    "chemistry": [
        ("Keep a small table of the atomic masses you use most often (H, C, N, O, Na, Cl, S) on your notes page. You'll use them in almost every calculation this term, and looking them up repeatedly slows you down."),
        ('If a problem gives a volume of gas rather than a mass, remember that at standard temperature and pressure one mole of an ideal gas occupies about 22.4 L (or 24 L at room temperature), which is a quick route to moles.'),
        ("Check which temperature and pressure conventions your course uses for 'standard conditions'; older books use 0 °C and 1 atm, newer ones 0 °C and 100 kPa, and the molar volume differs slightly between them."),
        ("Write the units next to every number and cancel them as you go. If the units of the final answer aren't "
         "what the question asked for, a step is upside down."),
        ("Atomic masses vary a little between periodic tables depending on rounding, so your molar mass might "
         "differ in the second decimal place from the answer key. That's fine; use the values your course provides."),
        ("A quick estimate before calculating helps. If the molar mass is around 100 g/mol and you have 25 g, you "
         "expect roughly a quarter of a mole; an answer of 2,500 mol would immediately look wrong."),
        ("When preparing solutions in the lab, label everything with the name, concentration, date and your "
         "initials. Unlabeled beakers are one of the most common causes of ruined experiments."),
        ("Significant figures matter in lab reports: the result can't be more precise than the least precise "
         "measurement. A balance reading to 0.01 g and a pipette to 0.1 mL set the limits here."),
        ("Moles are just a counting unit, like a dozen but enormously bigger. Thinking of them that way makes "
         "stoichiometry much less mysterious: equations tell you how many of each particle react, in proportion."),
    ],
    "astronomy": [
        ("The full form of Kepler's third law includes the masses: T² = 4π²a³ / (G(M + m)). For objects orbiting "
         "the Sun, the planet's mass is negligible and the constants combine into the neat years-and-AU version."),
        ("You can test the law with real data in a few minutes: take the semi-major axes and periods of the "
         "planets from any table, compute T²/a³ for each, and you'll get almost exactly 1 every time."),
        ("The same law works for moons around a planet or planets around another star, as long as you use the "
         "right central mass. Astronomers use it in reverse to weigh stars and planets from their satellites' orbits."),
        ("Astronomical distances are easier to grasp with a scale model. If the Sun were a grapefruit, Earth would "
         "be a grain of sand about 15 meters away, and Neptune would be nearly half a kilometer away."),
    ],
    "spreadsheet": [
        ('Google Sheets and Excel agree on most functions, but a few differ: Sheets has QUERY and native array behavior everywhere, while some newer Excel functions such as LET and LAMBDA arrived in Sheets later. If you share files between them, test the formulas on both.'),
        ('Whole-column references like D:D are convenient and automatically include new rows, but on very large sheets they can slow recalculation. A table or a bounded range is faster when performance matters.'),
        ("Converting the range into a proper table (Ctrl+T in Excel, or 'Convert to table' in Sheets) makes "
         "formulas easier to read and automatically extends them when you add rows, so you don't have to update "
         "the row numbers by hand."),
        ("If you reuse a range in many formulas, give it a name (Formulas → Define Name in Excel, Data → Named "
         "ranges in Sheets). A formula like =AVERAGE(Readings) is much easier to check than one full of cell "
         "addresses."),
        ("To see how a long formula is evaluated, Excel's Formulas → Evaluate Formula steps through it one piece "
         "at a time. In Google Sheets, selecting part of a formula while editing shows a preview of its value."),
        ("Check a formula on a tiny subset first: filter the data so only a handful of rows are visible, work out "
         "the answer by hand, and compare. It's the quickest way to be sure the criteria do what you intend."),
        ("Watch out for numbers stored as text, often imported from other systems. They're usually left-aligned "
         "and may show a small green triangle; functions like SUMIFS silently skip them. Multiplying by 1 or using "
         "VALUE converts them."),
        ("Absolute references ($A$2) stay fixed when you copy a formula, relative ones (A2) shift. Pressing F4 "
         "while the cursor is on a reference cycles through the combinations, which is much faster than typing "
         "the dollar signs."),
        ("Date handling differs between locales: 03/04 can mean March 4 or April 3. Building dates with DATE(year, "
         "month, day) inside formulas avoids the ambiguity entirely."),
    ],
    "sql": [
        ("If you're learning, try writing the query step by step: start with a plain SELECT of the rows you think you need, then add the GROUP BY, then the HAVING, checking the output at each stage."),
        ('Different databases spell some functions differently, especially for dates: date_trunc in PostgreSQL, strftime in SQLite, DATE_FORMAT in MySQL. Keep a small cheat sheet for the ones you use.'),
        ("Before running anything that changes data, run the same conditions as a SELECT and look at the rows "
         "returned. It's the cheapest insurance against an UPDATE or DELETE that hits more than you expected."),
        ("EXPLAIN (or EXPLAIN ANALYZE in PostgreSQL) shows how the database plans to execute a query. If a query "
         "on a large table is slow, an index on the columns in WHERE, JOIN or GROUP BY clauses is usually the fix."),
        ("Format long queries with one clause per line and consistent indentation. It makes them far easier to "
         "debug, and version control diffs become readable."),
        ("Remember that NULL isn't equal to anything, not even another NULL, so use IS NULL and IS NOT NULL in "
         "conditions. COALESCE(column, default) is handy for replacing NULLs in output."),
        ("Window functions such as ROW_NUMBER, RANK, LAG and running SUM(...) OVER (...) are supported by "
         "PostgreSQL, MySQL 8, SQLite 3.25+ and SQL Server, and they replace many awkward self-joins."),
        ("When comparing results between pandas and SQL, watch for differences in NULL handling and in how "
         "ties and sorting are treated; small discrepancies usually come from there."),
    ],
    "grammar": [
        ("Reading your writing aloud, slowly, is one of the best proofreading techniques. The ear catches "
         "agreement errors and missing words that the eye skims over."),
        ("Style guides differ on some points, such as the serial comma, but they agree on the basic rules shown "
         "here. If you write for an organization, check which guide it follows and stay consistent."),
        ("Grammar checkers are useful for catching typos, but they miss context-dependent errors and sometimes "
         "suggest wrong corrections. Treat their suggestions as questions, not answers."),
        ("Shorter sentences reduce the chance of these errors. When a sentence has several clauses and "
         "modifiers, splitting it in two often fixes the grammar and improves the clarity at the same time."),
    ],
}


def _tips(rng: random.Random, domain: str, p_one: float = 0.95, p_two: float = 0.6) -> str:
    """Zero, one or two distinct tip paragraphs for ``domain``, each preceded by a blank line."""
    n = (rng.random() < p_one) + (rng.random() < p_two)
    return "".join("\n\n" + t for t in rng.sample(TIPS[domain], min(n, len(TIPS[domain]))))


def _maybe(rng: random.Random, text: str, p: float = 0.5) -> str:
    """Return ``" " + text`` with probability ``p``, else an empty string (a user's optional detail)."""
    return " " + text if rng.random() < p else ""



# Background paragraphs specific to each kind of worked problem; one may follow the worked answer.
BACKGROUND: dict[str, list[str]] = {
    "free_fall": [
        ("Historically, this is the problem that Galileo reframed. Aristotle's physics said heavier objects fall "
         "faster; Galileo argued, using inclined planes to slow the motion enough to time it, that in the absence "
         "of air resistance all objects fall with the same acceleration, so the distance grows with the square of "
         "the time."),
        ("The value of g isn't quite the same everywhere on Earth. It's about 9.78 m/s² at the equator and 9.83 m/s² "
         "at the poles, partly because Earth's rotation and its slightly flattened shape reduce the effective "
         "gravity near the equator. For homework problems, 9.81 m/s² is the standard compromise."),
        ("For a real falling object, drag grows with the square of the speed, so eventually it balances the weight "
         "and the object stops accelerating: that's terminal velocity. A skydiver in a belly-down position reaches "
         "it at around 55 m/s after roughly 12 seconds, far short of what the vacuum formula would predict."),
    ],
    "projectile": [
        ("The key insight behind these problems, that horizontal and vertical motion are independent, is also "
         "Galileo's. A classic demonstration: a bullet fired horizontally and one dropped from the same height at "
         "the same moment hit the level ground together, because horizontal speed doesn't change how fast an "
         "object falls."),
        ("The trajectory is a parabola because the horizontal position grows linearly with time while the vertical "
         "position is quadratic in time. Eliminating t gives y = x tan θ − g x² / (2 v² cos² θ), which is the "
         "equation of a downward-opening parabola."),
        ("In sports, launch height matters as well as angle. A shot put released two meters above the ground "
         "travels farthest at angles well below 45°, typically around 37 to 40°, because the landing point is lower "
         "than the launch point and athletes can push harder at flatter angles."),
    ],
    "incline": [
        ("Friction coefficients are empirical: they depend on both surfaces, their cleanliness and sometimes on "
         "speed. Typical values range from about 0.05 for steel on ice to 0.6 or more for rubber on dry concrete, "
         "and static friction is usually somewhat higher than kinetic friction for the same pair."),
        ("Inclined planes are one of the classical simple machines. A long, gentle ramp lets you raise a load with "
         "a smaller force than lifting it straight up, at the cost of pushing it over a longer distance; without "
         "friction, the work done is the same either way."),
        ("A neat way to see why mass cancels: doubling the mass doubles the weight component along the slope, but "
         "it also doubles the normal force and therefore the friction. Both sides of Newton's second law scale by "
         "the same factor, so the acceleration stays put."),
    ],
    "led_resistor": [
        ("The forward voltage of an LED comes from the band gap of its semiconductor: photons of shorter wavelength "
         "carry more energy, so blue and white LEDs need around 3 V while red ones need about 2 V. White LEDs are "
         "usually blue LEDs coated with a phosphor that converts part of the light to yellow."),
        ("An LED's current rises extremely steeply once the forward voltage is reached, so a tiny increase in "
         "voltage can cause a large increase in current. That's why you can't just connect an LED to a supply "
         "that 'matches' its forward voltage; the series resistor turns that steep curve into a stable operating point."),
        ("Many modern indicator LEDs are bright enough at 2 to 5 mA, far below the 20 mA often quoted as a maximum. "
         "Running them at lower current saves power, reduces heat and extends their life, which is worth "
         "considering for battery-powered projects."),
    ],
    "voltage_divider": [
        ("Voltage dividers are everywhere in electronics: they scale a battery voltage down to a range an analog "
         "input can measure, bias transistor stages, and set the output of adjustable regulators. A potentiometer "
         "is simply a divider whose ratio you can change by turning the knob."),
        ("Pairing a fixed resistor with a sensor whose resistance changes, such as a thermistor or a "
         "light-dependent resistor, turns the sensor reading into a voltage. The choice of the fixed resistor "
         "sets where the output is most sensitive; matching it to the sensor's resistance in the middle of the "
         "range of interest is a good starting point."),
        ("The divider's output impedance equals R1 and R2 in parallel. That single number tells you how much the "
         "output will sag under load: smaller resistors make a stiffer divider but waste more current, so the "
         "design is always a trade-off between accuracy and power."),
    ],
    "series_parallel": [
        ("The parallel formula is easiest to remember in its reciprocal form: 1/R = 1/R₂ + 1/R₃ + ... Conductances "
         "(1/R) simply add in parallel, just as resistances add in series, which is why the product-over-sum "
         "shortcut only works for exactly two resistors."),
        ("Real circuits are rarely this tidy, but the same reduce-then-expand approach works for any network that "
         "can be broken into series and parallel pieces. For networks that can't, such as a bridge, you need "
         "Kirchhoff's laws directly, usually as a set of simultaneous equations."),
        ("An intuition that helps: adding a resistor in parallel always lowers the total resistance, because it "
         "opens an additional path for current, while adding one in series always raises it. If your answer "
         "contradicts that, recheck the arithmetic."),
    ],
    "quadratic": [
        ("The quadratic formula is just completing the square done once, in general. Divide by a, move c across, "
         "add (b/2a)² to both sides so the left becomes a perfect square, and take square roots; the formula drops "
         "out, with the discriminant under the root."),
        ("Quadratics turn up constantly in applications: projectile heights, areas with an unknown side, profit "
         "models and lens equations all lead to them. In each case it's worth asking which root makes sense "
         "physically; a negative time or length is usually discarded."),
        ("Methods to choose between: factoring is fastest when the roots are small integers, completing the "
         "square is best when you also want the vertex, and the formula always works. Checking the discriminant "
         "first tells you which one is worth trying."),
    ],
    "linear_system": [
        ("Geometrically, each linear equation in two unknowns is a straight line, and the solution is the point "
         "where the lines cross. Sketching both lines, even roughly, is a good way to check that the answer is "
         "plausible."),
        ("Substitution is the other standard method: solve one equation for one variable and substitute into the "
         "other. It's handy when a variable already has a coefficient of 1; elimination tends to be cleaner when "
         "all the coefficients are larger."),
        ("For bigger systems, the same elimination idea becomes Gaussian elimination on a matrix, which is how "
         "computers solve systems with thousands of unknowns. Learning to do the two-variable case carefully is "
         "exactly the right foundation for that."),
    ],
    "derivative": [
        ("The power rule, d/dx xⁿ = n xⁿ⁻¹, together with the fact that derivatives of sums are sums of derivatives, "
         "is all you need for any polynomial. Product, quotient and chain rules come in once functions are "
         "multiplied, divided or nested."),
        ("Geometrically, the derivative at a point is the limit of the slopes of secant lines through that point "
         "and a nearby one, as the nearby point slides closer. The tangent line is the line those secants approach."),
        ("A tangent line is also the best linear approximation of the function near the point: for x close to the "
         "point, f(x) ≈ f(x₀) + f′(x₀)(x − x₀). This idea, linearization, is behind Newton's method for finding "
         "roots and many approximations in physics."),
    ],
    "sequences": [
        ("The pairing trick for arithmetic series is usually credited to a young Carl Friedrich Gauss, who is said "
         "to have added the numbers from 1 to 100 in moments by noticing that they form 50 pairs summing to 101. "
         "The story may be embellished, but the method is sound."),
        ("Geometric series converge only when the ratio lies strictly between −1 and 1; then the infinite sum is "
         "a/(1 − r). With a ratio of 1 or more, the terms don't shrink and the sum grows without limit."),
        ("Both kinds of sequence model real processes: arithmetic ones for steady, additive changes, and geometric "
         "ones for repeated percentage changes such as bounces, radioactive decay or population growth."),
    ],
    "statistics_summary": [
        ("The n − 1 in the sample standard deviation, known as Bessel's correction, compensates for the fact that "
         "deviations are measured from the sample mean, which is itself fitted to the data. Without it, the "
         "sample variance would systematically underestimate the population variance."),
        ("For data with a strong skew, such as rainfall, where most days are dry and a few are very wet, the "
         "median and the interquartile range often describe a 'typical' value better than the mean and standard "
         "deviation."),
        ("A quick outlier screen is the 1.5 × IQR rule: compute the quartiles, and flag anything more than 1.5 "
         "interquartile ranges below the first quartile or above the third. Flagged values deserve a second look, "
         "not automatic deletion."),
    ],
    "probability": [
        ("Modern probability theory grew out of questions about games of chance. Letters between Blaise Pascal and "
         "Pierre de Fermat in 1654, prompted by a gambler's puzzle about dice, laid out the idea of counting "
         "equally likely outcomes that's used here."),
        ("Intuition about probability is notoriously unreliable. The birthday problem is a famous example: in a "
         "group of just 23 people, the chance that two share a birthday is slightly over 50%, far higher than most "
         "people guess."),
        ("A simulation is a great way to check an answer like this. A few lines of code that repeat the experiment "
         "a hundred thousand times with a random number generator will land very close to the exact probability."),
    ],
    "number_bases": [
        ("Computers use binary because their basic components have two stable states, on and off, which are easy "
         "to build reliably and hard to confuse even with electrical noise. Every number, character and "
         "instruction is ultimately stored as a pattern of bits."),
        ("Octal, base 8, was once common for the same reason as hex: one octal digit is exactly three bits. It "
         "survives today mainly in Unix file permissions, where 755 means rwxr-xr-x."),
        ("The repeated-division method works for any base, not just 2: divide by the base, record the remainder, "
         "and repeat. Reading the remainders backwards always gives the digits from most to least significant."),
    ],
    "moles": [
        ("The mole was redefined in 2019: it is now exactly 6.02214076 × 10²³ particles, a fixed number, rather "
         "than the number of atoms in 12 grams of carbon-12. For everyday calculations nothing changes."),
        ("Molar mass links the invisible world of atoms to a balance in the lab. Because the atomic mass of an "
         "element in g/mol equals the mass of one atom in atomic mass units, weighing out the molar mass always "
         "gives the same number of particles, whatever the substance."),
        ("Hydrated salts are a common trap: copper(II) sulfate is often sold as the blue pentahydrate, "
         "CuSO₄·5H₂O, whose molar mass includes five water molecules. Check the label before weighing out a "
         "calculated mass."),
    ],
    "dilution": [
        ("Serial dilutions, repeating the same dilution several times in a row, are the practical way to reach "
         "very low concentrations accurately. Diluting 1:10 three times gives 1:1000 with much less error than "
         "trying to measure a tiny volume of stock directly."),
        ("Volumetric glassware is calibrated for a specific temperature, usually 20 °C, and for reading the bottom "
         "of the meniscus at eye level. Small habits like these make the difference between a rough and a precise "
         "concentration."),
        ("C₁V₁ = C₂V₂ works with any consistent units: mol/L and mL, percent and liters, even mg/mL. The only "
         "requirement is that both concentrations use the same unit and both volumes use the same unit."),
    ],
    "ideal_gas": [
        ("The ideal gas law combines the older laws of Boyle (P ∝ 1/V), Charles (V ∝ T) and Avogadro (V ∝ n). It "
         "assumes the molecules take up no space and don't attract each other, which is why it works best at low "
         "pressure and high temperature."),
        ("For higher accuracy, the van der Waals equation adds two corrections: one for the volume the molecules "
         "occupy and one for their mutual attraction. The constants are different for each gas, which is where "
         "the gas's identity finally matters."),
        ("The gas constant R appears in many guises: 8.314 J/(mol·K), 0.08206 L·atm/(mol·K) or 62.36 L·Torr/(mol·K). "
         "Choosing the version that matches your units saves conversions and avoids mistakes."),
    ],
    "kepler": [
        ("Kepler found the third law empirically in 1619, from Tycho Brahe's careful observations, decades before "
         "Newton explained it. Newton's law of gravitation showed why it holds and how it depends on the mass of "
         "the central body."),
        ("Kepler's first two laws complete the picture: orbits are ellipses with the Sun at one focus, and a line "
         "from the Sun to the planet sweeps out equal areas in equal times, so planets move fastest when they are "
         "closest to the Sun."),
        ("Comets show the laws at their most extreme. Halley's Comet has a semi-major axis of about 17.8 AU, so its "
         "period is about 17.8^1.5 ≈ 75 years, but its very elongated orbit takes it from inside Venus's orbit to "
         "beyond Neptune's."),
    ],
}

ASK_CONTEXT = ["It's for a homework set due tomorrow.", "I'm revising for an exam next week.",
               "I'm helping my teenager with homework and I'm very rusty.", "I'm working through an old textbook on my own.",
               "This came up in a practice test.", "I'd like to understand the method, not just the answer.",
               "My study group disagrees about this one."]


def _background(rng: random.Random, kind: str, p: float = 0.9) -> str:
    return "\n\n" + rng.choice(BACKGROUND[kind]) if rng.random() < p else ""


def _context(rng: random.Random, p: float = 0.4) -> str:
    return " " + rng.choice(ASK_CONTEXT) if rng.random() < p else ""


# ---------------------------------------------------------------------------------------------
# Physics
# ---------------------------------------------------------------------------------------------

FALL_OBJECTS = ["a stone", "a steel ball", "a wrench", "a marble", "a small rock", "a brass weight", "a golf ball"]
FALL_PLACES = ["from a bridge", "off the edge of a cliff", "from the top of a tower", "off a canyon ledge",
               "from a hot-air balloon that is hovering", "from the top of a dam wall", "off a tall crane"]


def free_fall(rng: random.Random) -> list[Pair]:
    h = rng.choice([5, 8, 12, 15, 20, 24, 30, 36, 45, 60, 80, 100, 125, 150])
    obj, place = rng.choice(FALL_OBJECTS), rng.choice(FALL_PLACES)
    t = math.sqrt(2 * h / G)
    v = G * t
    t2 = math.sqrt(4 * h / G)
    user = (f"{_opener(rng)}Physics homework: {obj} is dropped from rest {place}, {h} m above the ground. "
            "How long does it take to reach the ground and how fast is it moving just before impact? "
            "We're told to ignore air resistance.")
    attempt = rng.random() < 0.45
    if attempt:
        user += f" I used t = 2h/g and got {_num(2 * h / G)} s, but that seems too long."
    assistant = (
        ("Your attempt is close, but it's missing a square root: from h = ½gt² you get t² = 2h/g, so "
         "t = √(2h/g). Here's the full working.\n\n" if attempt else "")
        + f"Because {obj} starts from rest and only gravity acts on it, this is motion with constant "
        "acceleration a = g ≈ 9.81 m/s², pointing down. Take down as positive so every quantity is positive.\n\n"
        f"**Time to fall.** The displacement from rest is h = ½gt², so t = √(2h/g) = √(2 × {h} / 9.81) = "
        f"√{_num(2 * h / G, 3)} ≈ {_num(t)} s.\n\n"
        f"**Speed at impact.** v = gt = 9.81 × {_num(t)} ≈ {_num(v, 1)} m/s. You can check it without the time: "
        f"v = √(2gh) = √(2 × 9.81 × {h}) ≈ {_num(v, 1)} m/s, which is about {_num(v * 3.6, 0)} km/h.\n\n"
        "**Sanity check.** The fall time grows with the square root of the height, not in proportion to it. "
        f"From {2 * h} m the fall would take about {_num(t2)} s, roughly 41% longer rather than twice as long, "
        "and the impact speed would also rise by a factor of √2.\n\n"
        "In reality air drag would make both numbers a little smaller, noticeably so for light objects or long "
        "drops, but for a dense object over this distance the idealized answer is close."
        + _tips(rng, "physics")
    )
    pairs = [(user, assistant)]
    roll = rng.random()
    if roll < 0.35:
        u = rng.choice([3, 4, 5, 6, 8, 10, 12])
        tu = (-u + math.sqrt(u * u + 2 * G * h)) / G
        vu = math.sqrt(u * u + 2 * G * h)
        pairs.append((
            f"{_follow(rng)}What if it's thrown straight down at {u} m/s instead of being dropped?",
            f"Now the initial velocity is u = {u} m/s downward, so the displacement equation becomes "
            f"h = ut + ½gt², i.e. 4.905t² + {u}t − {h} = 0.\n\n"
            f"Using the quadratic formula and keeping the positive root: t = (−{u} + √({u}² + 2 × 9.81 × {h})) / 9.81 "
            f"= (−{u} + {_num(vu)}) / 9.81 ≈ {_num(tu)} s.\n\n"
            f"The impact speed follows from v² = u² + 2gh: v = √({u * u} + {_num(2 * G * h, 1)}) ≈ {_num(vu, 1)} m/s.\n\n"
            f"Notice that the extra {u} m/s at the start adds less than {u} m/s at the bottom: speeds combine through "
            "their squares (energies), not directly. The time drops from "
            f"{_num(t)} s to {_num(tu)} s."))
    elif roll < 0.65:
        u = rng.choice([4, 5, 6, 8, 10, 12, 15])
        tu = (u + math.sqrt(u * u + 2 * G * h)) / G
        rise = u * u / (2 * G)
        pairs.append((
            f"{_follow(rng)}And if it were thrown straight up at {u} m/s from the same spot, how long until it lands?",
            "Take up as positive this time. The position relative to the launch point is y = ut − ½gt², and the "
            f"object lands when y = −{h} m:\n\n−{h} = {u}t − 4.905t², i.e. 4.905t² − {u}t − {h} = 0.\n\n"
            f"The positive root is t = ({u} + √({u}² + 2 × 9.81 × {h})) / 9.81 ≈ {_num(tu)} s.\n\n"
            f"On the way it first rises u²/(2g) = {u * u}/19.62 ≈ {_num(rise)} m above the launch point, reaching a "
            f"peak {_num(h + rise, 1)} m above the ground after {_num(u / G)} s, then falls the rest of the way. "
            "A neat check: when it passes the launch point again on the way down it is moving at exactly "
            f"{u} m/s, as if it had simply been thrown downward at that speed."))
    elif roll < 0.85:
        gm = 1.62
        tm = math.sqrt(2 * h / gm)
        pairs.append((
            f"{_follow(rng)}Out of curiosity, how would the answer change on the Moon?",
            f"On the Moon g ≈ 1.62 m/s², about one sixth of Earth's value. The same formulas apply:\n\n"
            f"t = √(2h/g) = √(2 × {h} / 1.62) ≈ {_num(tm)} s, and v = gt ≈ {_num(gm * tm, 1)} m/s.\n\n"
            f"So the fall takes about √6 ≈ 2.45 times longer ({_num(tm)} s instead of {_num(t)} s) and the impact "
            "speed is about 2.45 times smaller. With no atmosphere, there is no drag either, which is why a "
            "hammer and a feather dropped together on the Moon land at the same moment."))
    return pairs


def projectile(rng: random.Random) -> list[Pair]:
    v = rng.choice([10, 12, 14, 15, 16, 18, 20, 22, 25, 28, 30])
    ang = rng.choice([15, 20, 25, 30, 35, 40, 50, 55, 60, 65, 70])
    th = math.radians(ang)
    t_air = 2 * v * math.sin(th) / G
    hmax = (v * math.sin(th)) ** 2 / (2 * G)
    rng_ = v * v * math.sin(2 * th) / G
    thing = rng.choice(["a ball", "a projectile", "a stone", "a small rocket with no thrust after launch",
                        "a water jet droplet", "a shot put"])
    user = (f"{_opener(rng)}If {thing} is launched from level ground at {v} m/s at {ang}° above the horizontal, "
            "how long is it in the air, how high does it go and how far does it land? No air resistance."
            + _maybe(rng, "I'm confused about whether to use the full launch speed or only part of it in each step."))
    assistant = (
        "Split the launch velocity into horizontal and vertical parts and treat them separately: the "
        "horizontal motion has constant speed, the vertical motion has constant downward acceleration g.\n\n"
        f"- Horizontal: vₓ = {v} cos {ang}° ≈ {_num(v * math.cos(th))} m/s\n"
        f"- Vertical: v_y = {v} sin {ang}° ≈ {_num(v * math.sin(th))} m/s\n\n"
        f"**Time in the air.** It lands when the vertical displacement is zero again: t = 2v_y/g = "
        f"2 × {_num(v * math.sin(th))} / 9.81 ≈ {_num(t_air)} s.\n\n"
        f"**Maximum height.** At the top v_y = 0, so H = v_y²/(2g) ≈ {_num(hmax)} m.\n\n"
        f"**Range.** R = vₓ × t ≈ {_num(v * math.cos(th))} × {_num(t_air)} ≈ {_num(rng_, 1)} m. The compact "
        f"formula R = v² sin(2θ)/g gives the same {_num(rng_, 1)} m.\n\n"
        "These idealized values are upper bounds; drag shortens both the height and especially the range."
        + _tips(rng, "physics")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.6:
        comp = 90 - ang
        r45 = v * v / G
        pairs.append((
            f"{_follow(rng)}Which angle would make it go the farthest, and is there another angle that lands at the same spot?",
            f"For launch and landing at the same height, R = v² sin(2θ)/g is largest when sin(2θ) = 1, i.e. θ = 45°. "
            f"At {v} m/s that maximum range is v²/g = {v * v}/9.81 ≈ {_num(r45, 1)} m.\n\n"
            f"Because sin(2θ) = sin(180° − 2θ), complementary angles give equal ranges: {ang}° and {comp}° both land "
            f"about {_num(rng_, 1)} m away. The steeper {max(ang, comp)}° shot climbs much higher "
            f"(≈ {_num((v * math.sin(math.radians(max(ang, comp)))) ** 2 / (2 * G))} m) and stays up longer, "
            "while the flatter one gets there sooner.\n\n"
            "With air resistance the best angle drops below 45°, typically to somewhere in the 30s for a ball, "
            "because a long, high arc loses more speed to drag."))
    return pairs


def incline(rng: random.Random) -> list[Pair]:
    ang = rng.choice([20, 25, 28, 30, 32, 35, 40])
    th = math.radians(ang)
    mu = rng.choice([m for m in (0.10, 0.12, 0.15, 0.18, 0.20, 0.25, 0.30) if m < math.tan(th) - 0.05])
    m = rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 15])
    n = m * G * math.cos(th)
    f = mu * n
    a = G * (math.sin(th) - mu * math.cos(th))
    box = rng.choice(["a wooden crate", "a block", "a metal box", "a sled", "a plastic tub", "a toolbox"])
    user = (f"{_opener(rng)}{box[0].upper() + box[1:]} of mass {m} kg slides down a ramp inclined at {ang}°. "
            f"The coefficient of kinetic friction is {mu}. What is its acceleration, and what are the normal and "
            "friction forces?")
    attempt = rng.random() < 0.45
    if attempt:
        user += f" I got a = g sin θ ≈ {_num(G * math.sin(th))} m/s², but I think I've left something out."
    assistant = (
        ("You've left out friction: g sin θ is the acceleration on a frictionless ramp. Friction acts up the slope "
         "and reduces it. Here's the full breakdown.\n\n" if attempt else "") +
        "Draw the free-body diagram with axes along and perpendicular to the ramp. Three forces act: "
        "gravity mg (straight down), the normal force N (perpendicular to the surface) and kinetic friction "
        "(up the slope, opposing the motion).\n\n"
        f"**Perpendicular to the ramp** there is no acceleration, so N = mg cos θ = {m} × 9.81 × cos {ang}° ≈ "
        f"{_num(n, 1)} N.\n\n"
        f"**Friction** is f = μN = {mu} × {_num(n, 1)} ≈ {_num(f, 1)} N.\n\n"
        f"**Along the ramp** the net force is mg sin θ − f = {_num(m * G * math.sin(th), 1)} − {_num(f, 1)} ≈ "
        f"{_num(m * a, 1)} N, so a = {_num(m * a, 1)} / {m} ≈ {_num(a)} m/s².\n\n"
        "Notice the mass cancels in a = g(sin θ − μ cos θ): a heavier crate has more weight pulling it down but "
        f"also proportionally more friction, so any mass would accelerate at {_num(a)} m/s² on this ramp."
        + _tips(rng, "physics")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.55:
        length = rng.choice([2, 3, 4, 5, 6, 8])
        t = math.sqrt(2 * length / a)
        pairs.append((
            f"{_follow(rng)}If it starts from rest and the ramp is {length} m long, how long does it take to reach the bottom?",
            f"With constant acceleration from rest, L = ½at², so t = √(2L/a) = √(2 × {length} / {_num(a)}) ≈ {_num(t)} s.\n\n"
            f"Its speed at the bottom is v = at ≈ {_num(a * t)} m/s (or v = √(2aL), the same value).\n\n"
            "For comparison, on a frictionless ramp it would accelerate at g sin θ = "
            f"{_num(G * math.sin(th))} m/s² and take {_num(math.sqrt(2 * length / (G * math.sin(th))))} s. The "
            f"difference in kinetic energy, about {_num(f * length, 1)} J, is the work done by friction, which ends "
            "up as heat in the surfaces."))
    else:
        pairs.append((
            f"{_follow(rng)}What's the smallest coefficient of static friction that would stop it from sliding at all?",
            "An object at rest stays put as long as the required friction does not exceed the maximum static "
            "friction μₛN. Balancing forces along the slope: mg sin θ ≤ μₛ mg cos θ, so μₛ ≥ tan θ.\n\n"
            f"For {ang}°, tan {ang}° ≈ {_num(math.tan(th), 3)}. Any surface pair with μₛ above that value holds the "
            "object still; below it, the object starts to slide. This is also how the coefficient is measured in "
            "the lab: tilt the ramp slowly and record the angle at which the object just begins to move."))
    return pairs


# ---------------------------------------------------------------------------------------------
# Electronics
# ---------------------------------------------------------------------------------------------

E12 = [1.0, 1.2, 1.5, 1.8, 2.2, 2.7, 3.3, 3.9, 4.7, 5.6, 6.8, 8.2]
LEDS = {"red": 2.0, "yellow": 2.1, "orange": 2.0, "green": 3.0, "blue": 3.2, "white": 3.1}


def _e12_at_least(r: float) -> float:
    decade = 10 ** math.floor(math.log10(r))
    for base in E12 + [10.0]:
        if base * decade >= r - 1e-9:
            return round(base * decade, 6)
    return round(10 * decade, 6)


def _ohms(r: float) -> str:
    if r >= 1000:
        return f"{_num(r / 1000, 2)} kΩ"
    return f"{_num(r, 1)} Ω"


def led_resistor(rng: random.Random) -> list[Pair]:
    color = rng.choice(list(LEDS))
    vf = LEDS[color]
    supply = rng.choice([s for s in (3.3, 5.0, 9.0, 12.0) if s > vf + 0.9])
    ma = rng.choice([5, 10, 15, 20])
    i = ma / 1000
    r = (supply - vf) / i
    r_std = _e12_at_least(r)
    i_real = (supply - vf) / r_std
    p = i_real ** 2 * r_std
    rating = "¼ W" if p < 0.125 else "½ W" if p < 0.25 else "1 W"
    user = (f"{_opener(rng)}I want to run a {color} LED from a {_num(supply, 1)} V supply at about {ma} mA. "
            "What resistor do I need?")
    attempt = rng.random() < 0.45
    if attempt:
        user += f" Ohm's law gives me {_num(supply / i, 0)} Ω, is that right?"
    assistant = (
        ("Not quite: that treats the LED as if it dropped no voltage. Only the difference between the supply and "
         "the LED's forward voltage appears across the resistor.\n\n" if attempt else "") +
        "The resistor has to drop whatever voltage the LED doesn't, at the current you want. A "
        f"{color} LED typically has a forward voltage around {_num(vf, 1)} V (check your datasheet; it varies by "
        "part and with current).\n\n"
        f"R = (V_supply − V_f) / I = ({_num(supply, 1)} − {_num(vf, 1)}) V / {_num(i, 3)} A ≈ {_ohms(r)}.\n\n"
        + (f"That happens to be a standard E12 value, so {_ohms(r_std)} is exactly right. If it weren't, you'd round "
           "**up** to the next standard value to keep the current slightly below target.\n\n"
           if abs(r - r_std) < 1e-6 else
           f"That isn't a standard value, so round **up** to the next E12 value, {_ohms(r_std)}, which keeps the "
           f"current slightly below target: I = {_num(supply - vf, 2)} / {_num(r_std, 0)} ≈ "
           f"{_num(i_real * 1000, 1)} mA.\n\n")
        + f"Power in the resistor is P = I²R ≈ {_num(p * 1000, 1)} mW, so a {rating} resistor gives a comfortable "
        "margin. Rounding up rather than down is the safe habit: a little less current barely changes the "
        "brightness, but too much shortens the LED's life."
        + _tips(rng, "electronics")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.6:
        if supply > 2 * vf + 0.6:
            r2 = (supply - 2 * vf) / i
            text = (f"Two LEDs in series share the same current and their forward voltages add: 2 × {_num(vf, 1)} = "
                    f"{_num(2 * vf, 1)} V. The resistor now drops {_num(supply - 2 * vf, 2)} V, so "
                    f"R = {_num(supply - 2 * vf, 2)} / {_num(i, 3)} ≈ {_ohms(r2)}; the next E12 value up is "
                    f"{_ohms(_e12_at_least(r2))}.\n\nThis is more efficient than two separate branches, because less "
                    "power is wasted as heat in the resistor. Leave at least a volt or so of headroom across the "
                    "resistor, though; otherwise small variations in V_f make the current swing a lot.")
        else:
            text = (f"Two {color} LEDs in series need about {_num(2 * vf, 1)} V before any current flows, which leaves "
                    f"too little (or no) headroom from a {_num(supply, 1)} V supply, so the current would be tiny and "
                    "unpredictable. Put them in parallel instead, each with **its own** resistor of "
                    f"{_ohms(r_std)}. Don't share one resistor between parallel LEDs: small differences in forward "
                    "voltage make one LED hog the current.")
        pairs.append((f"{_follow(rng)}Could I run two of them from the same supply?", text))
    return pairs


def voltage_divider(rng: random.Random) -> list[Pair]:
    vin = rng.choice([5, 9, 12, 15, 24])
    r1 = rng.choice([1.0, 2.2, 3.3, 4.7, 6.8, 10, 15, 22, 33, 47]) * 1000
    r2 = rng.choice([1.0, 1.5, 2.2, 3.3, 4.7, 6.8, 10, 22]) * 1000
    vout = vin * r2 / (r1 + r2)
    cur = vin / (r1 + r2)
    user = (f"{_opener(rng)}In a voltage divider with R1 = {_ohms(r1)} on top and R2 = {_ohms(r2)} to ground, fed from "
            f"{vin} V, what's the output voltage? And how much current does the divider draw?")
    attempt = rng.random() < 0.4
    if attempt:
        user += f" I calculated {_num(vin * r1 / (r1 + r2))} V but I'm not sure I used the right resistor on top."
    assistant = (
        ("Your number uses R1 in the numerator, which gives the voltage across the top resistor instead of the "
         "output. The output is taken across R2, the resistor to ground.\n\n" if attempt else "") +
        "With nothing connected to the output, the same current flows through both resistors, so the input "
        "voltage splits in proportion to the resistances:\n\n"
        f"V_out = V_in × R2 / (R1 + R2) = {vin} × {_num(r2 / 1000)} / ({_num(r1 / 1000)} + {_num(r2 / 1000)}) ≈ "
        f"{_num(vout)} V.\n\n"
        f"The divider current is I = V_in / (R1 + R2) = {vin} / {_num(r1 + r2, 0)} Ω ≈ {_num(cur * 1000, 3)} mA, and "
        f"the total power dissipated is about {_num(vin * cur * 1000, 2)} mW.\n\n"
        "Those numbers only hold while the output is unloaded. A divider is fine for feeding a high-impedance "
        "input such as an ADC pin or an op-amp, but it is a poor power supply: anything that draws real current "
        "pulls the output down."
        + _tips(rng, "electronics")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.6:
        rl = rng.choice([1, 2.2, 4.7, 10, 47, 100]) * 1000
        rp = r2 * rl / (r2 + rl)
        vl = vin * rp / (r1 + rp)
        pairs.append((
            f"{_follow(rng)}What happens if I connect a {_ohms(rl)} load across the output?",
            f"The load sits in parallel with R2, so the bottom leg becomes R2 ∥ R_L = ({_num(r2 / 1000)} × "
            f"{_num(rl / 1000)}) / ({_num(r2 / 1000)} + {_num(rl / 1000)}) kΩ ≈ {_ohms(rp)}.\n\n"
            f"The output drops to V_out = {vin} × {_num(rp / 1000, 3)} / ({_num(r1 / 1000)} + {_num(rp / 1000, 3)}) ≈ "
            f"{_num(vl)} V, compared with {_num(vout)} V unloaded ({_num(100 * (vout - vl) / vout, 1)}% lower).\n\n"
            "A common rule of thumb is to keep the load at least ten times larger than R2 if you want the output "
            "to stay within about 10% of its unloaded value. If the load is heavier than that, use a regulator or a "
            "buffer amplifier instead."))
    return pairs


def series_parallel(rng: random.Random) -> list[Pair]:
    r1, r2, r3 = (rng.choice([10, 22, 33, 47, 56, 68, 82, 100, 150, 220, 330, 470]) for _ in range(3))
    v = rng.choice([6, 9, 12, 18, 24])
    rp = r2 * r3 / (r2 + r3)
    req = r1 + rp
    i = v / req
    vp = i * rp
    user = (f"{_opener(rng)}A {v} V battery drives R1 = {r1} Ω in series with a parallel pair R2 = {r2} Ω and "
            f"R3 = {r3} Ω. Find the total resistance and the current through each resistor.")
    attempt = rng.random() < 0.4
    if attempt:
        user += f" I just added all three and got {r1 + r2 + r3} Ω, but apparently that's wrong."
    assistant = (
        ("Adding all three would be right only if every resistor were in series. R2 and R3 sit side by side, so "
         "current splits between them and their combined resistance is smaller than either one.\n\n"
         if attempt else "") +
        "Reduce the circuit step by step, then work back out.\n\n"
        f"1. **Parallel pair.** R2 ∥ R3 = R2R3/(R2 + R3) = ({r2} × {r3}) / ({r2} + {r3}) ≈ {_num(rp, 2)} Ω. A "
        "parallel combination is always smaller than its smallest branch, which is a useful check.\n"
        f"2. **Total.** R_eq = R1 + R2∥R3 = {r1} + {_num(rp, 2)} ≈ {_num(req, 2)} Ω.\n"
        f"3. **Battery current.** I = V/R_eq = {v} / {_num(req, 2)} ≈ {_num(i * 1000, 1)} mA. All of it flows "
        "through R1.\n"
        f"4. **Voltages.** V₁ = I·R1 ≈ {_num(i * r1, 2)} V, leaving V_p = {_num(vp, 2)} V across the parallel pair.\n"
        f"5. **Branch currents.** I₂ = V_p/R2 ≈ {_num(vp / r2 * 1000, 1)} mA and I₃ = V_p/R3 ≈ "
        f"{_num(vp / r3 * 1000, 1)} mA.\n\n"
        f"Check with Kirchhoff's current law: {_num(vp / r2 * 1000, 1)} + {_num(vp / r3 * 1000, 1)} ≈ "
        f"{_num(i * 1000, 1)} mA, matching the battery current (up to rounding). And the voltages around the loop "
        f"add up to {v} V, as they must."
        + _tips(rng, "electronics")
    )
    return [(user, assistant)]


# ---------------------------------------------------------------------------------------------
# Mathematics
# ---------------------------------------------------------------------------------------------


def quadratic(rng: random.Random) -> list[Pair]:
    a = rng.choice([1, 1, 1, 2, 3, -1, 2])
    if rng.random() < 0.2:
        a = 1
        b = rng.choice([2, 4, 6, -2, -4, -6])
        c = b * b // 4 + rng.choice([1, 2, 4, 5, 9])
        d = b * b - 4 * a * c
        re_, im = -b / (2 * a), math.sqrt(-d) / (2 * a)
        user = f"{_opener(rng)}How do I solve {_poly([a, b, c])} = 0? I keep getting a square root of a negative number."
        assistant = (
            "That's not a mistake: this equation has no real solutions, and the negative number under the root "
            "is exactly what tells you so.\n\n"
            f"With a = {a}, b = {_n(b)}, c = {c}, the discriminant is Δ = b² − 4ac = {b * b} − {4 * a * c} = {_n(d)}.\n\n"
            "- Δ > 0: two distinct real roots\n- Δ = 0: one repeated real root\n- Δ < 0: no real roots, two complex "
            "conjugate roots\n\n"
            f"Here Δ < 0, so the parabola y = {_poly([a, b, c])} never touches the x-axis; its vertex at x = −b/2a = "
            f"{_num(re_)} has y = {_num(a * re_ * re_ + b * re_ + c)} > 0 and it opens upward.\n\n"
            "If your course uses complex numbers, the quadratic formula still works with i = √−1:\n\n"
            f"x = (−b ± √Δ) / 2a = ({_n(-b)} ± √({_n(d)})) / 2 = {_num(re_)} ± {'' if im == 1 else _num(im, 3)}i.\n\n"
            "You can check by substituting one root back in, or by confirming that the roots add to −b/a and "
            "multiply to c/a."
            + _tips(rng, "math")
        )
        return [(user, assistant)]
    r1, r2 = rng.sample(range(-9, 10), 2)
    b, c = -a * (r1 + r2), a * r1 * r2
    d = b * b - 4 * a * c
    xv = -b / (2 * a)
    yv = a * xv * xv + b * xv + c
    user = f"{_opener(rng)}Can you walk me through solving {_poly([a, b, c])} = 0 with the quadratic formula?"
    assistant = (
        f"Sure. Identify the coefficients: a = {_n(a)}, b = {_n(b)}, c = {_n(c)}.\n\n"
        f"**1. Discriminant.** Δ = b² − 4ac = ({_n(b)})² − 4({_n(a)})({_n(c)}) = {b * b} − ({_n(4 * a * c)}) = {d}. "
        f"It's positive (and a perfect square, √Δ = {math.isqrt(d)}), so there are two rational roots.\n\n"
        f"**2. Formula.** x = (−b ± √Δ) / 2a = ({_n(-b)} ± {math.isqrt(d)}) / {_n(2 * a)}.\n\n"
        f"- x₁ = ({_n(-b)} + {math.isqrt(d)}) / {_n(2 * a)} = {_num((-b + math.isqrt(d)) / (2 * a))}\n"
        f"- x₂ = ({_n(-b)} − {math.isqrt(d)}) / {_n(2 * a)} = {_num((-b - math.isqrt(d)) / (2 * a))}\n\n"
        f"**3. Check.** The roots should add to −b/a = {_num(-b / a)} and multiply to c/a = {_num(c / a)}: "
        f"{_n(r1)} + {_p(r2)} = {_n(r1 + r2)} and {_n(r1)} × {_p(r2)} = {_n(r1 * r2)}. ✓\n\n"
        f"Because Δ is a perfect square you could also factor directly: {_poly([a, b, c])} = "
        f"{'' if a == 1 else ('−' if a == -1 else str(a))}(x {'−' if r1 >= 0 else '+'} {abs(r1)})(x "
        f"{'−' if r2 >= 0 else '+'} {abs(r2)})."
        + _tips(rng, "math")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.55:
        pairs.append((
            f"{_follow(rng)}How do I find the vertex and sketch the graph?",
            f"The vertex lies halfway between the roots, at x = −b/(2a) = {_num(xv)} (the average of {_n(r1)} and {_n(r2)}). "
            f"Substituting gives y = {_num(yv)}, so the vertex is ({_num(xv)}, {_num(yv)}).\n\n"
            f"For the sketch:\n- a = {_n(a)} is {'positive, so the parabola opens upward and the vertex is a minimum' if a > 0 else 'negative, so the parabola opens downward and the vertex is a maximum'}.\n"
            f"- It crosses the x-axis at x = {_n(min(r1, r2))} and x = {_n(max(r1, r2))}.\n"
            f"- It crosses the y-axis at y = c = {_n(c)}.\n- It's symmetric about the vertical line x = {_num(xv)}.\n\n"
            f"Plot those points, draw a smooth U through them, and label the vertex. Completing the square gives "
            f"the same information in one line: y = {'' if a == 1 else ('−' if a == -1 else a)}({_shift('x', xv)})² "
            f"{'+' if yv >= 0 else '−'} {_num(abs(yv))}, where the vertex can be read off directly."))
    return pairs


def _lin(a: int, b: int, c: int) -> str:
    """Render ``ax + by = c`` with tidy signs."""
    return f"{_poly([a, 0])} {'+' if b > 0 else '−'} {_poly([abs(b), 0], 'y')} = {_n(c)}"


def linear_system(rng: random.Random) -> list[Pair]:
    while True:
        x, y = rng.randint(-6, 9), rng.randint(-6, 9)
        a1, b1, a2, b2 = (rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6]) for _ in range(4))
        if a1 * b2 - a2 * b1 != 0 and abs(a1) != abs(a2):
            break
    c1, c2 = a1 * x + b1 * y, a2 * x + b2 * y
    e1, e2 = _lin(a1, b1, c1), _lin(a2, b2, c2)
    coef_y = b1 * a2 - b2 * a1
    rhs = c1 * a2 - c2 * a1
    user = f"{_opener(rng)}Solve the system {e1} and {e2} by elimination, please. I always mess up the signs."
    assistant = (
        "Elimination works by scaling the equations so one variable has matching coefficients, then subtracting.\n\n"
        f"(1) {e1}\n(2) {e2}\n\n"
        f"**Eliminate x.** Multiply (1) by {_n(a2)} and (2) by {_n(a1)}, so both x-coefficients become {_n(a1 * a2)}:\n\n"
        f"(1′) {_lin(a1 * a2, b1 * a2, c1 * a2)}\n(2′) {_lin(a1 * a2, b2 * a1, c2 * a1)}\n\n"
        f"Subtract (2′) from (1′): ({_n(b1 * a2)} − ({_n(b2 * a1)}))y = {_n(c1 * a2)} − ({_n(c2 * a1)}), i.e. "
        f"{_poly([coef_y, 0], 'y')} = {_n(rhs)}, so y = {_n(y)}.\n\n"
        f"**Back-substitute** into (1): {_poly([a1, 0])} {'+' if b1 > 0 else '−'} {abs(b1)}({_n(y)}) = {_n(c1)} → "
        f"{_poly([a1, 0])} = {_n(c1 - b1 * y)} → x = {_n(x)}.\n\n"
        f"**Check in (2):** {_n(a2)}({_n(x)}) {'+' if b2 > 0 else '−'} {abs(b2)}({_n(y)}) = {_n(a2 * x + b2 * y)}, "
        "which matches the right-hand side. ✓\n\n"
        "Sign tip: write the subtraction with brackets around the whole second row, as above, before simplifying. "
        "Most sign slips happen when a negative coefficient is subtracted without brackets."
        + _tips(rng, "math", p_one=0.6, p_two=0.2)
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.4:
        pairs.append((
            f"{_follow(rng)}Is there a quick way to check whether a system like this has exactly one solution?",
            f"Yes: look at the determinant of the coefficients, D = a₁b₂ − a₂b₁. Here D = ({_n(a1)})({_n(b2)}) − "
            f"({_n(a2)})({_n(b1)}) = {_n(a1 * b2 - a2 * b1)}, which is non-zero, so the two lines have different "
            "slopes and cross at exactly one point.\n\nIf D = 0 the lines are parallel: either they never meet (no "
            "solution) or they are the same line (infinitely many solutions), depending on the constants. Cramer's "
            f"rule uses the same determinant: x = Dₓ/D and y = D_y/D, where Dₓ = c₁b₂ − c₂b₁ = {_n(c1 * b2 - c2 * b1)} "
            f"and D_y = a₁c₂ − a₂c₁ = {_n(a1 * c2 - a2 * c1)}, giving x = {_n(x)} and y = {_n(y)} again."))
    return pairs


def derivative(rng: random.Random) -> list[Pair]:
    a = rng.choice([1, 2, -1, 1, 3])
    b = rng.choice([-6, -4, -3, -2, 0, 2, 3, 5])
    c = rng.choice([-9, -5, -4, -1, 1, 2, 4, 7])
    d = rng.choice([-3, -1, 0, 2, 5, 8])
    x0 = rng.choice([-2, -1, 1, 2, 3])

    def f(t: float) -> float:
        return a * t ** 3 + b * t ** 2 + c * t + d

    slope = 3 * a * x0 ** 2 + 2 * b * x0 + c
    y0 = f(x0)
    icpt = y0 - slope * x0
    user = (f"{_opener(rng)}Find the equation of the tangent line to f(x) = {_poly([a, b, c, d])} at x = {_n(x0)}.")
    assistant = (
        "A tangent line needs a point and a slope, and the derivative supplies the slope.\n\n"
        f"**Derivative.** Using the power rule term by term: f′(x) = {_poly([3 * a, 2 * b, c])}.\n\n"
        f"**Slope at x = {_n(x0)}.** f′({_n(x0)}) = "
        f"{_expr([(3 * a, f'({_n(x0)})²'), (2 * b, f'({_n(x0)})'), (c, '')])} = {_n(slope)}.\n\n"
        f"**Point.** f({_n(x0)}) = {_expr([(a, f'({_n(x0)})³'), (b, f'({_n(x0)})²'), (c, f'({_n(x0)})'), (d, '')])} "
        f"= {_n(y0)}, so the line passes through ({_n(x0)}, {_n(y0)}).\n\n"
        f"**Line.** {_shift('y', y0)} = {_n(slope)}({_shift('x', x0)}), which simplifies to "
        f"y = {_expr([(slope, 'x'), (icpt, '')])}.\n\n"
        "A quick graphical check is worth doing: plot f and the line near the point. The line should touch the "
        "curve there and hug it closely nearby, crossing it only if the point is an inflection point."
        + _tips(rng, "math")
    )
    pairs = [(user, assistant)]
    disc = (2 * b) ** 2 - 4 * (3 * a) * c
    if rng.random() < 0.5:
        if disc > 0:
            r = math.sqrt(disc)
            xa, xb = (-2 * b - r) / (6 * a), (-2 * b + r) / (6 * a)
            kinds = ["a local maximum" if 6 * a * xx + 2 * b < 0 else "a local minimum" for xx in (xa, xb)]
            text = (f"Set f′(x) = {_poly([3 * a, 2 * b, c])} = 0. The discriminant is {disc} > 0, so there are two "
                    f"critical points: x ≈ {_num(xa, 3)} and x ≈ {_num(xb, 3)}.\n\nThe second derivative f″(x) = "
                    f"{_poly([6 * a, 2 * b])} classifies them: at x ≈ {_num(xa, 3)} it is "
                    f"{_num(6 * a * xa + 2 * b, 2)}, so that is {kinds[0]}; at x ≈ {_num(xb, 3)} it is "
                    f"{_num(6 * a * xb + 2 * b, 2)}, so that is {kinds[1]}.\n\nThe function values there are "
                    f"f ≈ {_num(f(xa), 3)} and f ≈ {_num(f(xb), 3)}. Between the two critical points the cubic turns "
                    f"around; the inflection point sits exactly halfway, at x = {_num(-b / (3 * a), 3)}.")
        else:
            text = (f"Set f′(x) = {_poly([3 * a, 2 * b, c])} = 0. Its discriminant is {_n(disc)}, which is "
                    f"{'zero' if disc == 0 else 'negative'}, so f′ never changes sign and f has no local maximum or "
                    f"minimum: it is monotonic, always {'increasing' if a > 0 else 'decreasing'} (apart from at most "
                    f"one flat point). The curve still bends: its inflection point is where f″(x) = "
                    f"{_poly([6 * a, 2 * b])} = 0, at x = {_num(-b / (3 * a), 3)}.")
        pairs.append((f"{_follow(rng)}Does this function have any local maxima or minima?", text))
    return pairs


def sequences(rng: random.Random) -> list[Pair]:
    if rng.random() < 0.5:
        first = rng.choice([12, 15, 18, 20, 24, 30])
        n = rng.randint(5, first - 1) if first < 12 else rng.randint(6, 12)
        last = first - (n - 1)
        total = n * (first + last) // 2 if (n * (first + last)) % 2 == 0 else n * (first + last) / 2
        thing = rng.choice(["logs", "bricks", "pipes", "cans in a display pyramid", "paving stones"])
        user = (f"{_opener(rng)}A stack of {thing} has {first} in the bottom row, and each row above has one fewer. "
                f"If there are {n} rows, how many are there in total?")
        assistant = (
            "The row counts form an arithmetic sequence: the first term is "
            f"a₁ = {first}, the common difference is d = −1, and there are n = {n} terms.\n\n"
            f"**Top row.** aₙ = a₁ + (n − 1)d = {first} + ({n - 1})(−1) = {last}.\n\n"
            f"**Sum.** Sₙ = n(a₁ + aₙ)/2 = {n} × ({first} + {last}) / 2 = {_num(total)}.\n\n"
            "The formula comes from Gauss's pairing trick: write the sequence forwards and backwards, add them "
            f"term by term, and every pair sums to {first + last}. There are {n} pairs, which counts everything twice, "
            "hence the division by two.\n\nA quick sense check: the average row has "
            f"({first} + {last})/2 = {_num((first + last) / 2)} items, and {n} rows of that size give the same total."
            + _tips(rng, "math")
        )
        return [(user, assistant)]
    h0 = rng.choice([1.5, 2.0, 2.5, 3.0, 4.0])
    r = rng.choice([0.5, 0.6, 0.7, 0.75, 0.8])
    k = rng.choice([3, 4, 5, 6])
    hk = h0 * r ** k
    down = h0 + 2 * h0 * r * (1 - r ** (k - 1)) / (1 - r) if k > 1 else h0
    total_inf = h0 + 2 * h0 * r / (1 - r)
    user = (f"{_opener(rng)}A ball is dropped from {_num(h0)} m and each bounce reaches {int(r * 100)}% of the previous "
            f"height. How high is the {k}th bounce, and how far has it traveled when it hits the ground for the "
            f"{k}th time?")
    assistant = (
        f"The bounce heights form a geometric sequence with ratio r = {r}.\n\n"
        f"**Height of bounce {k}.** hₖ = h₀rᵏ = {_num(h0)} × {r}^{k} ≈ {_num(hk, 3)} m.\n\n"
        f"**Distance to the {k}th impact.** The ball falls {_num(h0)} m first. After that, each of the first {k - 1} "
        "bounces is traveled twice (up and down). Those bounce heights sum as a geometric series:\n\n"
        f"h₀r + h₀r² + … + h₀r^{k - 1} = h₀r(1 − r^{k - 1})/(1 − r) ≈ {_num((down - h0) / 2, 3)} m.\n\n"
        f"Total: {_num(h0)} + 2 × {_num((down - h0) / 2, 3)} ≈ {_num(down, 3)} m.\n\n"
        "If it bounced forever, the infinite series converges because r < 1: the total distance would be "
        f"h₀ + 2h₀r/(1 − r) ≈ {_num(total_inf, 3)} m. Real balls stop sooner, because the ratio isn't perfectly constant."
        + _tips(rng, "math")
    )
    return [(user, assistant)]


STAT_CONTEXTS = [
    ("daily rainfall totals (mm) from a weather station", (0, 30), 1),
    ("reaction times (ms) from a lab experiment", (180, 320), 0),
    ("lengths (mm) of quartz crystals from one sample", (8, 40), 1),
    ("noon wind speeds (km/h) over two weeks", (5, 45), 0),
    ("measured resistances (Ω) from a batch of nominally 470 Ω resistors", (455, 485), 0),
    ("pendulum periods (s) timed by different students", (1.8, 2.2), 2),
    ("river depths (m) measured at one gauge", (1.0, 3.5), 2),
    ("earthquake magnitudes recorded in one region this month", (2.0, 5.5), 1),
]


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def statistics_summary(rng: random.Random) -> list[Pair]:
    ctx, (lo, hi), nd = rng.choice(STAT_CONTEXTS)
    n = rng.randint(7, 11)
    xs = [round(rng.uniform(lo, hi), nd) for _ in range(n)]
    if nd == 0:
        xs = [int(x) for x in xs]
    mean = sum(xs) / n
    med = _median(xs)
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    sd = math.sqrt(var)
    data = ", ".join(_num(x, nd) for x in xs)
    user = (f"{_opener(rng)}Here are some {ctx}: {data}. Can you work out the mean, median, range and standard "
            "deviation, showing the steps?")
    attempt = rng.random() < 0.4
    if attempt:
        user += (f" My calculator gave {_num(math.sqrt(var * (n - 1) / n), 3)} for the standard deviation but the "
                 f"answer sheet says {_num(sd, 3)}.")
    srt = ", ".join(_num(x, nd) for x in sorted(xs))
    assistant = (
        f"There are n = {n} values.\n\n"
        f"**Mean.** Sum them: Σx = {_num(sum(xs), nd + 1)}. Then x̄ = {_num(sum(xs), nd + 1)} / {n} ≈ {_num(mean, 3)}.\n\n"
        f"**Median.** Sorted: {srt}. "
        + (f"With an odd count the median is the middle ({n // 2 + 1}th) value: {_num(med, nd + 1)}.\n\n" if n % 2
           else f"With an even count it is the average of the {n // 2}th and {n // 2 + 1}th values: {_num(med, 3)}.\n\n")
        + f"**Range.** max − min = {_num(max(xs), nd)} − {_num(min(xs), nd)} = {_num(max(xs) - min(xs), nd + 1)}.\n\n"
        "**Standard deviation.** Treating these as a sample, s = √(Σ(x − x̄)² / (n − 1)). The squared deviations "
        f"sum to {_num(var * (n - 1), 3)}, so s² = {_num(var * (n - 1), 3)} / {n - 1} ≈ {_num(var, 3)} and "
        f"s ≈ {_num(sd, 3)}.\n\n"
        f"The mean and median are {'close, which suggests a fairly symmetric spread' if abs(mean - med) < 0.15 * sd else 'noticeably apart, a hint that the data are skewed or contain an unusual value'}. "
        "If these values are the whole population rather than a sample, divide by n instead of n − 1 "
        "(STDEV.P rather than STDEV.S in a spreadsheet)."
        + (f" That's exactly the difference you saw: {_num(math.sqrt(var * (n - 1) / n), 3)} is the population "
           f"version (dividing by {n}), and {_num(sd, 3)} the sample version (dividing by {n - 1})." if attempt else "")
        + _tips(rng, "statistics")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.5:
        se = sd / math.sqrt(n)
        pairs.append((
            f"{_follow(rng)}How precise is that mean? My instructor mentioned the standard error.",
            f"The standard error of the mean is SE = s/√n = {_num(sd, 3)} / √{n} ≈ {_num(se, 3)}. It measures how much "
            "the sample mean would vary if you repeated the whole measurement many times, whereas s describes the "
            "spread of individual values.\n\nA rough 95% confidence interval uses the t-distribution with n − 1 = "
            f"{n - 1} degrees of freedom; the critical value is about {_num(_t95(n - 1), 3)}, so the interval is "
            f"{_num(mean, 3)} ± {_num(_t95(n - 1) * se, 3)}, i.e. from {_num(mean - _t95(n - 1) * se, 3)} to "
            f"{_num(mean + _t95(n - 1) * se, 3)}.\n\nTo halve the standard error you would need four times as many "
            "measurements, which is why precision gets expensive quickly."))
    return pairs


def _t95(df: int) -> float:
    table = {4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179}
    return table.get(df, 2.2)


def probability(rng: random.Random) -> list[Pair]:
    kind = rng.choice(["dice", "coins", "cards", "six"])
    if kind == "dice":
        k = rng.choice([3, 4, 5, 6, 8, 9, 10, 11])
        ways = 6 - abs(k - 7)
        combos = ", ".join(f"({i},{k - i})" for i in range(1, 7) if 1 <= k - i <= 6)
        user = f"{_opener(rng)}What's the probability of rolling a total of {k} with two fair six-sided dice?"
        assistant = (
            "Treat the dice as distinguishable (say, red and blue), so there are 6 × 6 = 36 equally likely outcomes.\n\n"
            f"The outcomes that sum to {k} are {combos}: that's {ways} of them.\n\n"
            f"P(total = {k}) = {ways}/36 ≈ {_num(ways / 36, 4)}, or about {_num(100 * ways / 36, 1)}%.\n\n"
            "Totals near 7 are the most likely because they can be made in the most ways; 7 itself has six "
            "combinations (probability 1/6), while 2 and 12 have only one each (1/36). A common mistake is to count "
            "(1,3) and (3,1) as the same outcome; doing so makes the outcomes unequally likely and gives wrong answers."
        )
    elif kind == "coins":
        n = rng.choice([4, 5, 6, 8, 10])
        k = rng.randint(1, n - 1)
        ways = math.comb(n, k)
        user = f"{_opener(rng)}If I flip a fair coin {n} times, what's the chance of getting exactly {k} heads?"
        assistant = (
            "Each sequence of heads and tails is equally likely, with probability (1/2)"
            f"^{n} = 1/{2 ** n}. The question is how many sequences have exactly {k} heads.\n\n"
            f"That's the number of ways to choose which {k} of the {n} flips are heads: C({n},{k}) = {n}! / ({k}! × "
            f"{n - k}!) = {ways}.\n\n"
            f"P(exactly {k} heads) = {ways}/{2 ** n} ≈ {_num(ways / 2 ** n, 4)} ({_num(100 * ways / 2 ** n, 1)}%).\n\n"
            "This is the binomial distribution with p = 0.5. The general formula is P(X = k) = C(n,k) pᵏ(1 − p)ⁿ⁻ᵏ, "
            "which also handles a biased coin. Notice that even the most likely count is far from certain: with "
            f"{n} flips, getting exactly {n // 2} heads happens only {_num(100 * math.comb(n, n // 2) / 2 ** n, 1)}% of the time."
        )
    elif kind == "cards":
        user = f"{_opener(rng)}If I draw two cards from a shuffled 52-card deck without replacement, what's the probability that both are aces? And at least one ace?"
        p_both = (4 / 52) * (3 / 51)
        p_none = math.comb(48, 2) / math.comb(52, 2)
        assistant = (
            "**Both aces.** Multiply conditional probabilities: the first card is an ace with probability 4/52; given "
            "that, three aces remain among 51 cards, so the second is an ace with probability 3/51.\n\n"
            f"P(both) = 4/52 × 3/51 = 12/2652 = 1/221 ≈ {_num(p_both, 4)}.\n\n"
            "**At least one ace.** Use the complement: no aces means both cards come from the 48 non-aces.\n\n"
            f"P(no ace) = C(48,2)/C(52,2) = 1128/1326 ≈ {_num(p_none, 4)}, so P(at least one) = 1 − {_num(p_none, 4)} ≈ "
            f"{_num(1 - p_none, 4)}, roughly 15%.\n\n"
            "Counting with combinations gives the same 'both aces' answer: C(4,2)/C(52,2) = 6/1326 = 1/221. The "
            "complement trick is usually the easiest route for any 'at least one' question."
        )
    else:
        n = rng.choice([2, 3, 4, 5, 6, 8, 10])
        p = 1 - (5 / 6) ** n
        user = f"{_opener(rng)}If I roll a die {n} times, what's the probability of getting at least one six?"
        assistant = (
            "'At least one' questions are easiest through the complement: find the chance of no sixes at all, then "
            "subtract from 1.\n\n"
            f"Each roll misses a six with probability 5/6, and rolls are independent, so P(no six in {n} rolls) = "
            f"(5/6)^{n} ≈ {_num((5 / 6) ** n, 4)}.\n\n"
            f"P(at least one six) = 1 − (5/6)^{n} ≈ {_num(p, 4)}, about {_num(100 * p, 1)}%.\n\n"
            f"A tempting shortcut is to add {n} × 1/6 = {_num(n / 6, 3)}, but that double-counts outcomes with several "
            "sixes and would exceed 1 for seven or more rolls. The probability creeps toward 1 but never reaches "
            "it; you need 4 rolls to pass 50% and 17 rolls to pass 95%."
        )
    return [(user, assistant + _tips(rng, "probability", p_one=0.95, p_two=0.6))]


def number_bases(rng: random.Random) -> list[Pair]:
    n = rng.randint(45, 999)
    steps = []
    q = n
    while q > 0:
        steps.append(f"{q} ÷ 2 = {q // 2} remainder {q % 2}")
        q //= 2
    binary = bin(n)[2:]
    pad = binary.zfill((len(binary) + 3) // 4 * 4)
    nibbles = [pad[i:i + 4] for i in range(0, len(pad), 4)]
    hexs = f"{n:X}"
    expand = " + ".join(f"{int(d, 16)}×16^{len(hexs) - 1 - i}" for i, d in enumerate(hexs))
    user = f"{_opener(rng)}How do I convert {n} to binary and hexadecimal by hand?"
    assistant = (
        "For binary, divide repeatedly by 2 and record the remainders:\n\n"
        + "\n".join(f"- {s}" for s in steps)
        + f"\n\nRead the remainders from the **last** to the first: {n} = {binary}₂.\n\n"
        "For hexadecimal, the quickest route is through binary: group the bits in fours from the right (padding "
        f"with zeros on the left), {' '.join(nibbles)}, and convert each group to one hex digit: "
        + ", ".join(f"{b} → {int(b, 2):X}" for b in nibbles)
        + f". So {n} = {n:X}₁₆ (often written 0x{n:X}).\n\n"
        f"Check by expanding: {expand} = {n}."
        + _tips(rng, "computing")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.5:
        m = rng.randint(3, 120)
        b = format(m, "08b")
        inv = "".join("1" if ch == "0" else "0" for ch in b)
        tc = format((1 << 8) - m, "08b")
        pairs.append((
            f"{_follow(rng)}How would −{m} look in 8-bit two's complement?",
            f"Start from +{m} in 8 bits: {b}. Then invert every bit: {inv}. Finally add 1: {tc}.\n\n"
            f"So −{m} is stored as {tc} (0x{(1 << 8) - m:02X}). As a check, adding it to {b} gives 1 0000 0000: the "
            "ninth bit overflows and is discarded, leaving zero, exactly as x + (−x) should.\n\n"
            "Equivalently, the 8-bit pattern for −x is the unsigned number 256 − x. The leading bit doubles as a sign "
            "bit: patterns starting with 1 are negative, so 8 bits cover −128 to +127."))
    return pairs


# ---------------------------------------------------------------------------------------------
# Chemistry
# ---------------------------------------------------------------------------------------------

ATOMIC = {"H": 1.008, "C": 12.011, "N": 14.007, "O": 15.999, "Na": 22.990, "Mg": 24.305, "Al": 26.982,
          "S": 32.06, "Cl": 35.45, "K": 39.098, "Ca": 40.078, "Fe": 55.845, "Cu": 63.546, "Mn": 54.938}
ELEMENT_NAMES = {"H": "hydrogen", "C": "carbon", "N": "nitrogen", "O": "oxygen", "Na": "sodium",
                 "Mg": "magnesium", "Al": "aluminum", "S": "sulfur", "Cl": "chlorine", "K": "potassium",
                 "Ca": "calcium", "Fe": "iron", "Cu": "copper", "Mn": "manganese"}
COMPOUNDS = [
    ("water", "H₂O", {"H": 2, "O": 1}), ("carbon dioxide", "CO₂", {"C": 1, "O": 2}),
    ("sodium chloride", "NaCl", {"Na": 1, "Cl": 1}), ("calcium carbonate", "CaCO₃", {"Ca": 1, "C": 1, "O": 3}),
    ("sulfuric acid", "H₂SO₄", {"H": 2, "S": 1, "O": 4}), ("ammonia", "NH₃", {"N": 1, "H": 3}),
    ("potassium permanganate", "KMnO₄", {"K": 1, "Mn": 1, "O": 4}),
    ("magnesium sulfate", "MgSO₄", {"Mg": 1, "S": 1, "O": 4}), ("iron(III) oxide", "Fe₂O₃", {"Fe": 2, "O": 3}),
    ("copper(II) sulfate", "CuSO₄", {"Cu": 1, "S": 1, "O": 4}), ("aluminum oxide", "Al₂O₃", {"Al": 2, "O": 3}),
    ("potassium nitrate", "KNO₃", {"K": 1, "N": 1, "O": 3}), ("methane", "CH₄", {"C": 1, "H": 4}),
    ("propane", "C₃H₈", {"C": 3, "H": 8}), ("sodium hydroxide", "NaOH", {"Na": 1, "O": 1, "H": 1}),
    ("calcium chloride", "CaCl₂", {"Ca": 1, "Cl": 2}), ("nitric acid", "HNO₃", {"H": 1, "N": 1, "O": 3}),
]


def moles(rng: random.Random) -> list[Pair]:
    name, formula, comp = rng.choice(COMPOUNDS)
    grams = rng.choice([2.5, 5, 8, 10, 12.5, 18, 25, 32, 40, 50, 75, 100, 150, 250])
    terms = [(el, k, ATOMIC[el]) for el, k in comp.items()]
    mm = sum(k * w for _, k, w in terms)
    mol = grams / mm
    user = f"{_opener(rng)}How many moles are in {_num(grams, 1)} g of {name} ({formula}), and how many molecules is that?"
    attempt = rng.random() < 0.4
    if attempt:
        user += f" I multiplied the mass by the molar mass and got {_num(grams * mm, 1)}, which can't be right."
    breakdown = "\n".join(f"- {ELEMENT_NAMES[el]}: {k} × {w} = {_num(k * w, 3)} g/mol" for el, k, w in terms)
    assistant = (
        ("You're right to be suspicious: moles are mass divided by molar mass, not multiplied. The units show it, "
         "since g ÷ (g/mol) leaves mol.\n\n" if attempt else "")
        + "First find the molar mass by adding up the atomic masses from the periodic table:\n\n"
        f"{breakdown}\n\nM({formula}) ≈ {_num(mm, 2)} g/mol.\n\n"
        f"**Moles.** n = m / M = {_num(grams, 1)} g / {_num(mm, 2)} g/mol ≈ {_num(mol, 4)} mol.\n\n"
        f"**Particles.** Multiply by Avogadro's number, 6.022 × 10²³ per mole: {_num(mol, 4)} × 6.022 × 10²³ ≈ "
        f"{mol * 6.022e23:.3e}".replace("e+", " × 10^") + " formula units.\n\n"
        "Keep the units in every step: grams divided by grams per mole leaves moles, which is an easy way to "
        "catch an upside-down division. For ionic compounds such as sodium chloride, 'formula units' is the more "
        "precise term than 'molecules'."
        + _tips(rng, "chemistry")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.5:
        el, k, w = rng.choice(terms)
        frac = k * w / mm
        pairs.append((
            f"{_follow(rng)}What fraction of that mass is {ELEMENT_NAMES[el]}?",
            f"The mass fraction of an element is its share of the molar mass: {k} × {w} / {_num(mm, 2)} ≈ "
            f"{_num(frac, 4)}, i.e. {_num(100 * frac, 2)}% {ELEMENT_NAMES[el]} by mass.\n\n"
            f"In your {_num(grams, 1)} g sample that is {_num(grams * frac, 3)} g of {ELEMENT_NAMES[el]}, contained in "
            f"{_num(k * mol, 4)} mol of {ELEMENT_NAMES[el]} atoms (there are {k} per formula unit).\n\n"
            "Percent composition like this is how empirical formulas are worked out in reverse: from measured mass "
            "percentages you divide by atomic masses, then scale to the simplest whole-number ratio."))
    return pairs


def dilution(rng: random.Random) -> list[Pair]:
    solute = rng.choice(["hydrochloric acid", "sodium chloride", "copper(II) sulfate", "sulfuric acid",
                         "potassium nitrate", "sodium hydroxide"])
    c1 = rng.choice([1.0, 2.0, 2.5, 5.0, 6.0, 10.0])
    c2 = rng.choice([c for c in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0) if c < c1])
    v2 = rng.choice([100, 250, 500, 1000])
    v1 = c2 * v2 / c1
    acid = "acid" in solute or "hydroxide" in solute
    user = (f"{_opener(rng)}I have a {_num(c1, 2)} M stock solution of {solute}. How do I make {v2} mL of a "
            f"{_num(c2, 3)} M solution?")
    assistant = (
        "Dilution keeps the number of moles of solute the same, only the volume changes, so C₁V₁ = C₂V₂.\n\n"
        f"V₁ = C₂V₂ / C₁ = ({_num(c2, 3)} M × {v2} mL) / {_num(c1, 2)} M = {_num(v1, 2)} mL.\n\n"
        f"So measure {_num(v1, 2)} mL of the stock and make it up to a final volume of {v2} mL. Use a volumetric "
        "flask for accuracy: add some water first, then the stock, then top up to the mark and invert to mix. "
        f"Note that you add water *up to* {v2} mL total, which is not the same as adding {_num(v2 - v1, 2)} mL of "
        "water, because volumes don't always add exactly.\n\n"
        + ("Safety: this one is corrosive. Wear goggles and gloves, and always add the concentrated solution to "
           "water, never water to the concentrate, because the heat released can make it spit."
           if acid else "A quick check: the dilution factor is C₁/C₂ = " + _num(c1 / c2, 2)
           + ", and the stock volume should be the final volume divided by that factor, which it is.")
        + _tips(rng, "chemistry", p_one=0.95, p_two=0.6)
    )
    return [(user, assistant)]


def ideal_gas(rng: random.Random) -> list[Pair]:
    n = rng.choice([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
    tc = rng.choice([0, 15, 20, 25, 37, 50, 80, 100])
    v = rng.choice([5.0, 10.0, 12.0, 20.0, 22.4, 25.0, 40.0])
    tk = tc + 273.15
    p = n * 8.314 * tk / (v / 1000)
    gas = rng.choice(["nitrogen", "oxygen", "argon", "helium", "neon", "carbon dioxide"])
    user = (f"{_opener(rng)}What's the pressure of {_num(n, 2)} mol of {gas} in a {_num(v, 1)} L container at {tc} °C? "
            "Assume it behaves as an ideal gas.")
    attempt = tc > 0 and rng.random() < 0.4
    if attempt:
        user += f" I got {_num(n * 8.314 * tc / v, 1)} by plugging the numbers straight in."
    assistant = (
        ("Your number comes from using degrees Celsius and liters directly. The gas law needs the absolute "
         "temperature in kelvin, and with R in J/(mol·K) the volume has to be in cubic meters.\n\n"
         if attempt else "")
        + "Use PV = nRT with everything in SI units.\n\n"
        f"- n = {_num(n, 2)} mol\n- T = {tc} + 273.15 = {_num(tk, 2)} K (always use kelvin)\n"
        f"- V = {_num(v, 1)} L = {_num(v / 1000, 4)} m³\n- R = 8.314 J/(mol·K)\n\n"
        f"P = nRT / V = {_num(n, 2)} × 8.314 × {_num(tk, 2)} / {_num(v / 1000, 4)} ≈ {_num(p, 0)} Pa ≈ "
        f"{_num(p / 1000, 1)} kPa.\n\n"
        f"In atmospheres that's {_num(p / 101325, 3)} atm (1 atm = 101.325 kPa).\n\n"
        "The identity of the gas doesn't matter in the ideal-gas model; only the number of moles does. Real "
        f"{gas} deviates slightly at high pressure or low temperature, but at these conditions the ideal result "
        "is typically within a percent or two."
        + _tips(rng, "chemistry")
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.5:
        t2c = tc + rng.choice([20, 40, 50, 100])
        t2 = t2c + 273.15
        pairs.append((
            f"{_follow(rng)}If I heat the sealed container to {t2c} °C, what does the pressure become?",
            "With a fixed amount of gas in a rigid container, n and V don't change, so P/T stays constant "
            "(Gay-Lussac's law): P₂ = P₁ × T₂/T₁.\n\n"
            f"P₂ = {_num(p / 1000, 1)} kPa × {_num(t2, 2)} / {_num(tk, 2)} ≈ {_num(p * t2 / tk / 1000, 1)} kPa.\n\n"
            "The temperatures must be in kelvin. Using Celsius would suggest the pressure jumps by a factor of "
            f"{_num(t2c / tc, 2) if tc else 'infinity'}, which is clearly wrong; the real increase is only "
            f"{_num(100 * (t2 / tk - 1), 1)}%."))
    return pairs


# ---------------------------------------------------------------------------------------------
# Astronomy with numbers
# ---------------------------------------------------------------------------------------------

BODIES = [("Mercury", 0.387), ("Venus", 0.723), ("Mars", 1.524), ("Ceres", 2.77), ("Jupiter", 5.20),
          ("Saturn", 9.58), ("Uranus", 19.2), ("Neptune", 30.1), ("Pluto", 39.5)]


def kepler(rng: random.Random) -> list[Pair]:
    a = rng.choice([1.3, 1.8, 2.2, 2.5, 3.1, 3.4, 4.0, 6.5, 12.0, 25.0, 45.0])
    period = a ** 1.5
    obj = rng.choice(["an asteroid", "a comet", "a hypothetical planet", "a dwarf planet", "a small moonlet"])
    near = min(BODIES, key=lambda b: abs(b[1] - a))
    user = f"{_opener(rng)}If {obj} orbits the Sun with a semi-major axis of {_num(a, 1)} AU, how long is its year?"
    assistant = (
        "Kepler's third law says the square of the orbital period is proportional to the cube of the semi-major "
        "axis. In units of years and astronomical units, for anything orbiting the Sun, it takes the tidy form "
        "T² = a³.\n\n"
        f"T = a^(3/2) = {_num(a, 1)}^1.5 = √({_num(a ** 3, 2)}) ≈ {_num(period, 2)} years, about "
        f"{_num(period * 365.25, 0)} days.\n\n"
        f"For comparison, {near[0]} at {near[1]} AU takes {_num(near[1] ** 1.5, 2)} years. Farther objects are "
        "slower in two ways at once: the path is longer and the orbital speed is lower, which is why the period "
        "grows faster than the distance.\n\n"
        "The semi-major axis is half the longest diameter of the ellipse; for an eccentric orbit the distance to "
        "the Sun varies a lot, but the period depends only on a."
        + _tips(rng, "astronomy", p_one=0.9, p_two=0.5)
    )
    pairs = [(user, assistant)]
    if rng.random() < 0.5:
        name, d = rng.choice(BODIES)
        secs = d * 499.0
        pairs.append((
            f"{_follow(rng)}How long does sunlight take to reach {name}?",
            f"Light crosses 1 AU in about 499 seconds (8 minutes 19 seconds). {name} orbits at about {d} AU on "
            f"average, so sunlight takes roughly {d} × 499 ≈ {_num(secs, 0)} s, or about {_num(secs / 60, 1)} minutes"
            + (f" ({_num(secs / 3600, 2)} hours)" if secs > 3600 else "")
            + ".\n\nThe same delay applies to radio signals, which is why spacecraft far from Earth can't be driven "
            "in real time: commands are sent in batches and the probe carries them out on its own."))
    return pairs


# ---------------------------------------------------------------------------------------------
# Spreadsheets, SQL and pandas over the same small data sets
# ---------------------------------------------------------------------------------------------

DATASETS = [
    dict(what="soil samples", table="soil_samples", id="Sample ID", id_col="sample_id", cat="Site", cat_col="site",
         cats=["North Ridge", "Creek Bed", "Quarry Edge", "East Slope"], date="Collected", date_col="collected_on",
         n1="pH", n1_col="ph", t1=[5.5, 6.0, 6.5, 7.0], n2="Depth (cm)", n2_col="depth_cm", t2=[10, 20, 30, 50]),
    dict(what="weather station readings", table="readings", id="Reading ID", id_col="reading_id", cat="Station",
         cat_col="station", cats=["Hilltop", "Harbor", "Valley", "Summit"], date="Date", date_col="read_on",
         n1="Max temp (°C)", n1_col="max_temp_c", t1=[25, 28, 30, 32], n2="Rainfall (mm)", n2_col="rain_mm",
         t2=[5, 10, 20, 25]),
    dict(what="machined part inspections", table="inspections", id="Part no.", id_col="part_no", cat="Machine",
         cat_col="machine", cats=["Lathe 1", "Lathe 2", "Mill A", "Mill B"], date="Inspected", date_col="inspected_on",
         n1="Diameter (mm)", n1_col="diameter_mm", t1=[24.95, 25.0, 25.05, 25.1], n2="Defects", n2_col="defects",
         t2=[1, 2, 3, 5]),
    dict(what="earthquake records", table="quakes", id="Event ID", id_col="event_id", cat="Region",
         cat_col="region", cats=["Coastal", "Basin", "Northern Range", "Delta"], date="Date", date_col="occurred_on",
         n1="Magnitude", n1_col="magnitude", t1=[2.5, 3.0, 4.0, 4.5], n2="Depth (km)", n2_col="depth_km",
         t2=[10, 20, 35, 70]),
    dict(what="river water samples", table="water_samples", id="Sample", id_col="sample_id", cat="Location",
         cat_col="location", cats=["Upstream", "Mill Bridge", "Outfall", "Estuary"], date="Date", date_col="sampled_on",
         n1="Nitrate (mg/L)", n1_col="nitrate_mg_l", t1=[5, 10, 25, 50], n2="Turbidity (NTU)", n2_col="turbidity_ntu",
         t2=[4, 10, 25, 50]),
    dict(what="telescope observation logs", table="observations", id="Object", id_col="object_id", cat="Constellation",
         cat_col="constellation", cats=["Orion", "Cygnus", "Lyra", "Cassiopeia"], date="Observed", date_col="observed_on",
         n1="Magnitude", n1_col="magnitude", t1=[4.0, 6.0, 8.0, 10.0], n2="Seeing (1-5)", n2_col="seeing",
         t2=[2, 3, 4, 5]),
    dict(what="solar panel output logs", table="panel_output", id="Log ID", id_col="log_id", cat="Array",
         cat_col="array_name", cats=["Roof East", "Roof West", "Carport", "Ground Mount"], date="Date",
         date_col="logged_on", n1="Output (kWh)", n1_col="output_kwh", t1=[5, 10, 15, 20], n2="Cloud cover (%)",
         n2_col="cloud_pct", t2=[20, 40, 60, 80]),
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def _layout(ds: dict, rows: int) -> str:
    return (f"columns A to E hold {ds['id']}, {ds['cat']}, {ds['date']}, {ds['n1']} and {ds['n2']}, with headers "
            f"in row 1 and data in rows 2 to {rows}")


def _a(noun: str) -> str:
    """Prefix the right indefinite article."""
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


def _sheet(ds: dict, rows: int, first: bool) -> str:
    """Describe the sheet in an opening question; refer back to it in a follow-up."""
    if first:
        return f"I have a spreadsheet of {ds['what']}: {_layout(ds, rows)}. "
    return "Same sheet. "


def sheet_averageifs(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    rows = ds["rows"]
    cat, thr = rng.choice(ds["cats"]), rng.choice(ds["t2"])
    user = (f"{lead}{_sheet(ds, rows, first)}How do I get the average "
            f"{ds['n1']} for {cat} only, counting just the rows where {ds['n2']} is above {thr}?")
    assistant = (
        "AVERAGEIFS does exactly this: it averages one range, keeping only rows that pass every condition.\n\n"
        f"```\n=AVERAGEIFS(D2:D{rows}, B2:B{rows}, \"{cat}\", E2:E{rows}, \">{thr}\")\n```\n\n"
        f"- `D2:D{rows}` is the range to average ({ds['n1']}).\n"
        f"- `B2:B{rows}, \"{cat}\"` keeps rows whose {ds['cat']} is exactly {cat} (not case-sensitive).\n"
        f"- `E2:E{rows}, \">{thr}\"` keeps rows where {ds['n2']} is greater than {thr}. The comparison goes inside "
        "the quotes.\n\n"
        "All ranges must be the same size, or you'll get a #VALUE! error. To make it reusable, put the site name "
        "in a cell, say H1, and the threshold in H2, then write the criteria as `H1` and `\">\"&H2`. If no rows "
        "match, AVERAGEIFS returns #DIV/0!; wrap it as `=IFERROR(AVERAGEIFS(...), \"no data\")` to show a "
        "friendlier message."
    )
    return user, assistant


def sheet_countifs_dates(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    rows = ds["rows"]
    year = rng.choice([2021, 2022, 2023, 2024])
    m = rng.randint(1, 12)
    thr = rng.choice(ds["t1"])
    last = [31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    user = (f"{lead}{_sheet(ds, rows, first)}How can I count how many rows "
            f"from {MONTHS[m - 1]} {year} have {ds['n1']} of at least {_num(thr, 2)}?")
    assistant = (
        "Use COUNTIFS with two conditions on the date column (a start and an end) plus one on the value:\n\n"
        f"```\n=COUNTIFS(C2:C{rows}, \">=\"&DATE({year},{m},1), C2:C{rows}, \"<=\"&DATE({year},{m},{last}), "
        f"D2:D{rows}, \">={_num(thr, 2)}\")\n```\n\n"
        "The `\">=\"&DATE(...)` pattern glues the comparison operator onto a real date value. Typing the date as "
        "text inside the quotes can fail depending on your locale, so DATE is the robust choice.\n\n"
        f"An alternative for the end condition is `\"<\"&DATE({year},{m + 1 if m < 12 else 1},1)`"
        + (f" (with the year changed to {year + 1})" if m == 12 else "")
        + ", which avoids looking up how many days the month has and also catches timestamps later on the last day.\n\n"
        "If the count looks too low, check that column C really contains dates rather than text that looks like "
        "dates: `=ISNUMBER(C2)` should return TRUE. Text dates can be converted with DATEVALUE or Data → Text to "
        "Columns."
    )
    return user, assistant


def sheet_lookup(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    rows = ds["rows"]
    cell = rng.choice(["H2", "G2", "J3", "K1"])
    user = (f"{lead}{_sheet(ds, rows, first)}I type {_a(ds['id'])} into {cell} and want "
            f"the matching {ds['n2']} to appear next to it. VLOOKUP keeps giving me #N/A.")
    assistant = (
        "In current Excel and in Google Sheets, XLOOKUP is the easiest tool:\n\n"
        f"```\n=XLOOKUP({cell}, A2:A{rows}, E2:E{rows}, \"not found\")\n```\n\n"
        "It searches the first range for the value, returns the item in the same position from the second range, "
        "and shows the fourth argument instead of #N/A when there's no match. It defaults to an exact match, "
        "which is what you want for IDs.\n\n"
        "If you need something that works everywhere, INDEX/MATCH does the same job:\n\n"
        f"```\n=INDEX(E2:E{rows}, MATCH({cell}, A2:A{rows}, 0))\n```\n\n"
        "The `0` in MATCH forces an exact match. Forgetting the equivalent `FALSE` as VLOOKUP's last argument is "
        "the most common cause of wrong answers; the most common cause of #N/A is a type mismatch, where the IDs "
        "are numbers in one place and text in the other, or have stray spaces. `=TRIM()` on both sides, or "
        f"`=ISTEXT({cell})` compared with `=ISTEXT(A2)`, will reveal it."
    )
    return user, assistant


def sheet_conditional(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    rows = ds["rows"]
    thr = rng.choice(ds["t1"])
    user = (f"{lead}{_sheet(ds, rows, first)}How do I highlight the whole row whenever {ds['n1']} (column D) "
            f"is below {_num(thr, 2)}?")
    assistant = (
        "Use conditional formatting with a custom formula, so the rule looks at column D but colors every column.\n\n"
        f"1. Select A2:E{rows} (start the selection at row 2).\n"
        "2. Excel: Home → Conditional Formatting → New Rule → 'Use a formula to determine which cells to format'. "
        "Google Sheets: Format → Conditional formatting → 'Custom formula is'.\n"
        f"3. Enter `=$D2<{_num(thr, 2)}` and pick a fill color.\n\n"
        "The dollar sign before D locks the column, so every cell in a row checks that row's D value; leaving the "
        "row number relative lets the rule move down the rows. Writing `=D2<...` without the dollar sign is the "
        "usual mistake: then each column checks a different column and only part of the row lights up.\n\n"
        "Blank cells count as zero, so empty rows may light up too. To exclude them, use "
        f"`=AND($D2<>\"\", $D2<{_num(thr, 2)})`."
    )
    return user, assistant


def sheet_summary(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    rows = ds["rows"]
    user = (f"{lead}{_sheet(ds, rows, first)}I'd like a little summary table: one row per {ds['cat'].lower()}, "
            f"with the number of records and the maximum {ds['n1']}. Is there a formula way rather than a pivot "
            "table?")
    assistant = (
        "Yes. With dynamic arrays (Excel 365 or Google Sheets) you can build it in three cells.\n\n"
        f"In G2, list the distinct {ds['cat'].lower()}s, sorted:\n\n```\n=SORT(UNIQUE(B2:B{rows}))\n```\n\n"
        "This spills downward automatically. Next to it, in H2, count each one, referring to the whole spill with "
        "the `#` operator:\n\n"
        f"```\n=COUNTIF(B2:B{rows}, G2#)\n```\n\nAnd in I2, the maximum per group:\n\n"
        f"```\n=MAXIFS(D2:D{rows}, B2:B{rows}, G2#)\n```\n\n"
        "In Google Sheets, replace `G2#` with `G2:G` wrapped in ARRAYFORMULA, or drag the formulas down instead. "
        "Blank cells in column B would appear as an empty group; `=SORT(UNIQUE(FILTER(B2:B"
        f"{rows}, B2:B{rows}<>\"\")))` removes them. A pivot table is still worth knowing, since it refreshes "
        "with one click and adds subtotals, but the formula version updates live as you add rows."
    )
    return user, assistant


SHEET_TASKS: list[Callable[[random.Random, dict, str, bool], Pair]] = [
    sheet_averageifs, sheet_countifs_dates, sheet_lookup, sheet_conditional, sheet_summary]


def _schema(ds: dict) -> str:
    return (f"{ds['table']}({ds['id_col']}, {ds['cat_col']}, {ds['date_col']}, {ds['n1_col']}, {ds['n2_col']})")


def _table(ds: dict, first: bool) -> str:
    if first:
        return f"I have a table {_schema(ds)}. "
    return f"Same {ds['table']} table. "


def sql_group(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    k = rng.choice([5, 10, 20, 30])
    user = (f"{lead}{_table(ds, first)}How do I get the average {ds['n1_col']} per "
            f"{ds['cat_col']}, but only for groups with at least {k} rows, highest average first?")
    assistant = (
        "Group, aggregate, then filter the groups with HAVING:\n\n"
        f"```sql\nSELECT {ds['cat_col']},\n       COUNT(*) AS n,\n       AVG({ds['n1_col']}) AS avg_{ds['n1_col']}\n"
        f"FROM {ds['table']}\nGROUP BY {ds['cat_col']}\nHAVING COUNT(*) >= {k}\nORDER BY avg_{ds['n1_col']} DESC;\n```\n\n"
        "WHERE filters individual rows before grouping; HAVING filters the groups after aggregation, which is why "
        "the count condition has to go in HAVING. Some databases don't allow the alias in ORDER BY, in which case "
        f"repeat the expression: `ORDER BY AVG({ds['n1_col']}) DESC`.\n\n"
        f"AVG ignores NULLs, so rows with a missing {ds['n1_col']} still count toward `n` but not toward the "
        f"average. If that matters, use `COUNT({ds['n1_col']})` instead of `COUNT(*)`, which counts only non-null values."
    )
    return user, assistant


def sql_top_n(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    k = rng.choice([2, 3, 5])
    user = (f"{lead}{_table(ds, first)}How can I get the top {k} rows by {ds['n2_col']} within each "
            f"{ds['cat_col']}?")
    assistant = (
        "This is the classic 'top N per group' problem, and a window function solves it cleanly:\n\n"
        f"```sql\nSELECT *\nFROM (\n  SELECT t.*,\n         ROW_NUMBER() OVER (PARTITION BY {ds['cat_col']}\n"
        f"                            ORDER BY {ds['n2_col']} DESC) AS rn\n  FROM {ds['table']} AS t\n) ranked\n"
        f"WHERE rn <= {k}\nORDER BY {ds['cat_col']}, rn;\n```\n\n"
        f"PARTITION BY restarts the numbering for each {ds['cat_col']}, and ORDER BY inside OVER decides who comes "
        "first. You can't filter on `rn` in the same SELECT where it's computed, hence the subquery (a CTE with "
        "WITH works just as well).\n\n"
        "Ties: ROW_NUMBER breaks them arbitrarily. Use RANK() to keep all tied rows (possibly more than "
        f"{k} per group) or DENSE_RANK() if you want the top {k} distinct values. Add a second ORDER BY key, such as "
        f"{ds['date_col']} DESC, to make the result deterministic."
    )
    return user, assistant


def sql_monthly(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    year = rng.choice([2022, 2023, 2024])
    user = (f"{lead}{_table(ds, first)}How do I count rows per month in {year}? I'm on "
            f"{rng.choice(['PostgreSQL', 'SQLite'])} but I'd like to know both ways.")
    assistant = (
        "Truncate each date to its month, then group by that value.\n\n**PostgreSQL**\n\n"
        f"```sql\nSELECT date_trunc('month', {ds['date_col']})::date AS month,\n       COUNT(*) AS n\nFROM {ds['table']}\n"
        f"WHERE {ds['date_col']} >= DATE '{year}-01-01'\n  AND {ds['date_col']} <  DATE '{year + 1}-01-01'\nGROUP BY 1\n"
        "ORDER BY 1;\n```\n\n**SQLite** has no date type, so dates are usually stored as ISO text and strftime "
        f"does the truncation:\n\n```sql\nSELECT strftime('%Y-%m', {ds['date_col']}) AS month, COUNT(*) AS n\n"
        f"FROM {ds['table']}\nWHERE {ds['date_col']} >= '{year}-01-01' AND {ds['date_col']} < '{year + 1}-01-01'\n"
        "GROUP BY month\nORDER BY month;\n```\n\n"
        "Using a half-open range (>= start and < next start) instead of BETWEEN avoids missing timestamps on the "
        "last day. Months with no rows won't appear at all; to show them as zero, join against a generated list "
        "of months (generate_series in PostgreSQL, a recursive CTE in SQLite)."
    )
    return user, assistant


def sql_duplicates(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    user = (f"{lead}{_table(ds, first)}I think it has duplicate rows, the same {ds['cat_col']}, "
            f"{ds['date_col']} and {ds['n1_col']} entered twice with different IDs. How do I find them and keep one?")
    assistant = (
        "First, find the groups that occur more than once:\n\n"
        f"```sql\nSELECT {ds['cat_col']}, {ds['date_col']}, {ds['n1_col']}, COUNT(*) AS copies\nFROM {ds['table']}\n"
        f"GROUP BY {ds['cat_col']}, {ds['date_col']}, {ds['n1_col']}\nHAVING COUNT(*) > 1;\n```\n\n"
        "To delete the extras while keeping the row with the smallest ID in each group:\n\n"
        f"```sql\nDELETE FROM {ds['table']}\nWHERE {ds['id_col']} NOT IN (\n  SELECT MIN({ds['id_col']})\n"
        f"  FROM {ds['table']}\n  GROUP BY {ds['cat_col']}, {ds['date_col']}, {ds['n1_col']}\n);\n```\n\n"
        "Run it inside a transaction and check the row count before committing, or first run the same logic as a "
        "SELECT to see what would go. Note that NULLs don't compare equal in the WHERE clause but do group "
        "together in GROUP BY, so rows with missing values are treated as duplicates of each other here. Once the "
        "table is clean, a UNIQUE constraint on those columns prevents the problem from coming back."
    )
    return user, assistant


def pandas_group(rng: random.Random, ds: dict, lead: str, first: bool) -> Pair:
    fname = f"{ds['table']}.csv"
    user = (f"{lead}In pandas, I've loaded {fname} with columns {ds['id_col']}, {ds['cat_col']}, "
            f"{ds['date_col']}, {ds['n1_col']}, {ds['n2_col']}. How do I get the mean and max of {ds['n1_col']} and "
            f"the number of rows per {ds['cat_col']} in one table?")
    assistant = (
        "Use groupby with named aggregation, which gives you clean column names in one step:\n\n"
        f"```python\nimport pandas as pd\n\ndf = pd.read_csv(\"{fname}\", parse_dates=[\"{ds['date_col']}\"])\n\n"
        f"summary = (\n    df.groupby(\"{ds['cat_col']}\")\n      .agg(n=(\"{ds['id_col']}\", \"size\"),\n"
        f"           mean_{ds['n1_col']}=(\"{ds['n1_col']}\", \"mean\"),\n           max_{ds['n1_col']}=(\"{ds['n1_col']}\", \"max\"))\n"
        f"      .sort_values(\"mean_{ds['n1_col']}\", ascending=False)\n)\nprint(summary)\n```\n\n"
        "Each keyword becomes an output column, and the tuple says which input column and which function to use. "
        "`size` counts rows including missing values, while `count` would skip NaNs.\n\n"
        f"The result has {ds['cat_col']} as its index. Add `.reset_index()` if you want it back as an ordinary "
        "column, for example before saving with `summary.to_csv(...)`. Passing `parse_dates` up front also lets you "
        f"do time-based grouping later, such as `df.groupby(df['{ds['date_col']}'].dt.to_period('M'))`."
    )
    return user, assistant


DATA_TASKS: list[Callable[[random.Random, dict, str, bool], Pair]] = [
    sql_group, sql_top_n, sql_monthly, sql_duplicates, pandas_group]


def _task_session(rng: random.Random, tasks: list, domain: str) -> list[Pair]:
    ds = {**rng.choice(DATASETS), "rows": rng.choice([120, 250, 400, 500, 800, 960, 1200, 2000])}
    chosen = rng.sample(tasks, rng.choice([1, 1, 2, 2, 3]))
    pairs = []
    for k, task in enumerate(chosen):
        user, assistant = task(rng, ds, _opener(rng) if k == 0 else _follow(rng), k == 0)
        tip_domain = "pandas" if task.__name__.startswith("pandas") else domain
        pairs.append((user, assistant + _tips(rng, tip_domain, p_one=0.8, p_two=0.35)))
    return pairs


def spreadsheet_session(rng: random.Random) -> list[Pair]:
    return _task_session(rng, SHEET_TASKS, "spreadsheet")


def data_code_session(rng: random.Random) -> list[Pair]:
    return _task_session(rng, DATA_TASKS, "sql")


# ---------------------------------------------------------------------------------------------
# Grammar and punctuation
# ---------------------------------------------------------------------------------------------

GRAMMAR = [
    dict(rule="subject-verb agreement with a long subject",
         explain=("The verb agrees with the head of the subject, not with the nearest noun. Phrases that start "
                  "with 'of', 'with', 'along with' or 'as well as' sit between the subject and the verb without "
                  "changing its number, so strip them away mentally and see what is left."),
         examples=[("The list of approved samples are on the shared drive.",
                    "The list of approved samples is on the shared drive.", "The subject is 'list', which is singular."),
                   ("The results of the second survey was surprising.",
                    "The results of the second survey were surprising.", "The subject is 'results', which is plural."),
                   ("The engineer, along with two technicians, were inspecting the dam.",
                    "The engineer, along with two technicians, was inspecting the dam.",
                    "'Along with two technicians' is parenthetical; the subject is still 'the engineer'."),
                   ("A box of old fossils were found in the basement.",
                    "A box of old fossils was found in the basement.", "What was found is one box.")]),
    dict(rule="it's versus its",
         explain=("'It's' always means 'it is' or 'it has'; the apostrophe marks the missing letters. 'Its' is the "
                  "possessive, like 'his' or 'hers', and possessive pronouns never take an apostrophe. A quick "
                  "test: replace the word with 'it is'. If the sentence still works, you need the apostrophe."),
         examples=[("The comet lost some of it's tail as it rounded the Sun.",
                    "The comet lost some of its tail as it rounded the Sun.", "The tail belongs to the comet."),
                   ("Its been raining since Monday.", "It's been raining since Monday.", "This is 'it has been'."),
                   ("The committee changed it's mind.", "The committee changed its mind.",
                    "The mind belongs to the committee."),
                   ("Its not clear whether the bridge will reopen.", "It's not clear whether the bridge will reopen.",
                    "This is 'it is not clear'.")]),
    dict(rule="comma splices",
         explain=("A comma alone can't join two complete sentences. Fix a splice with a period, a semicolon, a "
                  "comma plus a coordinating conjunction (and, but, or, so, yet), or by making one clause "
                  "subordinate with a word like 'because' or 'although'. Which fix is best depends on how closely "
                  "the ideas are linked."),
         examples=[("The storm passed quickly, the roads stayed flooded for days.",
                    "The storm passed quickly, but the roads stayed flooded for days.",
                    "'But' shows the contrast between the two clauses."),
                   ("The sample was contaminated, we had to repeat the test.",
                    "The sample was contaminated, so we had to repeat the test.",
                    "'So' makes the cause-and-effect link explicit."),
                   ("Granite is an igneous rock, it forms from slowly cooling magma.",
                    "Granite is an igneous rock; it forms from slowly cooling magma.",
                    "A semicolon joins two closely related independent clauses."),
                   ("The printer jammed again, nobody knew how to fix it.",
                    "The printer jammed again. Nobody knew how to fix it.", "Two short sentences read cleanly here.")]),
    dict(rule="dangling modifiers",
         explain=("An introductory phrase describes whatever comes right after the comma. If that isn't the thing "
                  "doing the action, the modifier 'dangles' and the sentence says something unintended. Fix it by "
                  "making the right subject follow the phrase, or by giving the phrase its own subject."),
         examples=[("Walking along the ridge, the valley looked enormous.",
                    "Walking along the ridge, we thought the valley looked enormous.",
                    "The valley wasn't walking; we were."),
                   ("After checking the data, the error became obvious.",
                    "After checking the data, I found the error immediately.", "The error didn't check the data."),
                   ("Covered in frost, she scraped the windshield.",
                    "She scraped the frost-covered windshield.", "The windshield was covered in frost, not her."),
                   ("To pass the inspection, the wiring must be replaced.",
                    "To pass the inspection, the owners must replace the wiring.",
                    "The wiring isn't trying to pass anything; the owners are.")]),
    dict(rule="fewer versus less",
         explain=("In careful writing, 'fewer' goes with things you can count one by one (fewer errors, fewer "
                  "stations) and 'less' with amounts you measure (less water, less time). Units of money, time "
                  "and distance are usually treated as amounts: 'less than ten minutes', 'less than five miles'."),
         examples=[("There were less errors in the second draft.", "There were fewer errors in the second draft.",
                    "Errors are countable."),
                   ("We need fewer water in the mix.", "We need less water in the mix.", "Water is measured, not counted."),
                   ("This checkout is for ten items or less.", "This checkout is for ten items or fewer.",
                    "Items are countable, although 'or less' is so common here that most people accept it."),
                   ("The new pump uses fewer energy.", "The new pump uses less energy.", "Energy is an amount.")]),
    dict(rule="who versus whom",
         explain=("'Who' is a subject (like 'he'), and 'whom' is an object (like 'him'). Rearrange the clause and "
                  "substitute: if 'he' fits, use 'who'; if 'him' fits, use 'whom'. After a preposition, 'whom' is "
                  "the formal choice. In everyday speech 'who' is fine almost everywhere, but formal writing keeps "
                  "the distinction."),
         examples=[("Whom do you think will win the election?", "Who do you think will win the election?",
                    "'He will win' works, so it's the subject form."),
                   ("The geologist who we interviewed was very helpful.",
                    "The geologist whom we interviewed was very helpful.", "'We interviewed him', so the object form."),
                   ("To who should I address the letter?", "To whom should I address the letter?",
                    "After a preposition, use 'whom'."),
                   ("She is the one whom said the results were wrong.",
                    "She is the one who said the results were wrong.", "'She said', so the subject form.")]),
    dict(rule="affect versus effect",
         explain=("Most of the time, 'affect' is a verb meaning to influence, and 'effect' is a noun meaning a "
                  "result. A memory aid: Affect is the Action, Effect is the End result. The exceptions are 'to "
                  "effect change' (a verb meaning to bring about) and 'affect' as a noun in psychology."),
         examples=[("The cold snap will effect the harvest dates.", "The cold snap will affect the harvest dates.",
                    "Here it's the verb 'influence'."),
                   ("The new rule had no affect on the schedule.", "The new rule had no effect on the schedule.",
                    "Here it's the noun 'result'."),
                   ("Humidity can effect how quickly paint dries.", "Humidity can affect how quickly paint dries.",
                    "Verb: influence."),
                   ("What affect does altitude have on boiling point?", "What effect does altitude have on boiling point?",
                    "Noun: result.")]),
    dict(rule="lay versus lie",
         explain=("'Lay' needs an object (you lay something down); 'lie' doesn't (you lie down). The tenses make it "
                  "confusing, because the past tense of 'lie' is 'lay': today I lie down, yesterday I lay down, I "
                  "have lain down. For 'lay': today I lay the book down, yesterday I laid it, I have laid it."),
         examples=[("I'm going to lay down for a few minutes.", "I'm going to lie down for a few minutes.",
                    "There's no object, so it's 'lie'."),
                   ("She laid on the couch all afternoon.", "She lay on the couch all afternoon.",
                    "The past tense of 'lie' is 'lay'."),
                   ("Lie the maps flat on the table.", "Lay the maps flat on the table.", "'The maps' is the object."),
                   ("The tools have laid in the shed since winter.", "The tools have lain in the shed since winter.",
                    "Past participle of 'lie' is 'lain'.")]),
    dict(rule="apostrophes with plurals and possessives",
         explain=("Plurals don't take apostrophes (two reports, the 1990s). Possessives do: add 's to singular nouns "
                  "and to plurals that don't end in s (the team's result, the children's drawings), and just an "
                  "apostrophe to plurals ending in s (the engineers' offices)."),
         examples=[("The technician's arrived early.", "The technicians arrived early.", "A plain plural needs no apostrophe."),
                   ("The students papers were graded overnight.", "The students' papers were graded overnight.",
                    "The papers belong to several students."),
                   ("In the 1980's, the station was rebuilt.", "In the 1980s, the station was rebuilt.",
                    "Decades are plurals, not possessives."),
                   ("The womens' committee met on Friday.", "The women's committee met on Friday.",
                    "'Women' is already plural and doesn't end in s, so add 's.")]),
    dict(rule="semicolons and colons",
         explain=("A semicolon joins two complete sentences that are closely related, or separates items in a list "
                  "when the items contain commas. A colon introduces something that explains or lists what came "
                  "before it, and what precedes a colon should be a complete sentence."),
         examples=[("We need three things; a map, a compass and a radio.",
                    "We need three things: a map, a compass and a radio.", "A list introduced by a complete sentence takes a colon."),
                   ("The ingredients of the alloy are: copper, tin and zinc.",
                    "The alloy is made of copper, tin and zinc.", "Don't put a colon between a verb and its objects."),
                   ("The lecture ran late: we missed the final demonstration.",
                    "The lecture ran late; we missed the final demonstration.",
                    "Two related clauses: a semicolon is the conventional choice (a colon is acceptable if the second explains the first)."),
                   ("Attendees came from Oslo, Norway, Lyon, France, and Porto, Portugal.",
                    "Attendees came from Oslo, Norway; Lyon, France; and Porto, Portugal.",
                    "Semicolons separate list items that contain commas.")]),
    dict(rule="then versus than",
         explain=("'Than' compares (taller than, rather than); 'then' is about time or sequence (first this, then "
                  "that) or consequence (if so, then...). If the sentence compares two things, you want 'than'."),
         examples=[("Basalt is denser then granite.", "Basalt is denser than granite.", "It's a comparison."),
                   ("We measured the depth and than the temperature.", "We measured the depth and then the temperature.",
                    "It's a sequence."),
                   ("It's better to measure twice then to cut twice.", "It's better to measure twice than to cut twice.",
                    "'Better ... than' is a comparison."),
                   ("If the signal drops, than restart the receiver.", "If the signal drops, then restart the receiver.",
                    "'If..., then...' expresses a consequence.")]),
    dict(rule="pronoun case in compound phrases",
         explain=("When a pronoun is paired with another noun, remove the other noun to hear the right form. "
                  "'Between' and other prepositions take object pronouns (me, him, her, us, them), and 'myself' "
                  "is only correct when it refers back to 'I' in the same clause."),
         examples=[("Please send the report to Maria and I.", "Please send the report to Maria and me.",
                    "You'd say 'send it to me'."),
                   ("Him and his brother built the telescope.", "He and his brother built the telescope.",
                    "You'd say 'he built', not 'him built'."),
                   ("Between you and I, the data look weak.", "Between you and me, the data look weak.",
                    "'Between' takes the object form."),
                   ("Contact Sam or myself with questions.", "Contact Sam or me with questions.",
                    "'Myself' needs an 'I' earlier in the same clause.")]),
]

GRAMMAR_ASK = [
    "Is this sentence correct? \"{s}\"",
    "Can you check the grammar here: \"{s}\"",
    "Something sounds off in this sentence but I can't say what: \"{s}\"",
    "Would an editor change anything in \"{s}\"?",
    "Quick grammar check, please: \"{s}\"",
]


def grammar_session(rng: random.Random) -> list[Pair]:
    cats = rng.sample(GRAMMAR, rng.choice([1, 1, 2, 2, 3]))
    pairs = []
    for k, cat in enumerate(cats):
        (wrong, right, note), *others = rng.sample(cat["examples"], 3)
        lead = _opener(rng) if k == 0 else _follow(rng)
        user = lead + rng.choice(GRAMMAR_ASK).format(s=wrong)
        more = others if rng.random() < 0.6 else others[:1]
        examples = "\n".join(f"- \"{w}\" → \"{r}\" ({why[0].lower()}{why[1:].rstrip('.')})" for w, r, why in more)
        assistant = (
            f"{rng.choice(['Not quite.', 'One thing needs fixing.', 'Close, but there is one error.'])} "
            f"The corrected version is:\n\n> {right}\n\n{note}\n\nThe issue here is {cat['rule']}. "
            f"{cat['explain']}\n\nMore examples of the same slip:\n{examples}"
            + rng.choice(["", "\n\nReading the sentence aloud often catches this kind of error.",
                          "\n\nIf you'd like, paste a longer paragraph and I'll check it for the same pattern.",
                          "\n\nStyle guides agree on this one, so it's worth fixing in formal writing."])
            + _tips(rng, "grammar", p_one=0.5, p_two=0.1))
        pairs.append((user, assistant))
    return pairs


# ---------------------------------------------------------------------------------------------
# Short explainers (each used once)
# ---------------------------------------------------------------------------------------------

EXPLAINERS: dict[str, list[dict]] = {
    "geology": [
        dict(q="How do geodes form? I cracked one open and the crystals inside look too perfect to be natural.",
             a=("They are natural, they just form slowly in a protected space. A geode starts as a hollow in rock: a "
                "gas bubble in cooling lava, or a cavity left where a nodule of another mineral dissolved in "
                "sedimentary rock.\n\nOver thousands to millions of years, groundwater seeps through the surrounding "
                "rock carrying dissolved silica or other minerals. When conditions change, for example the water "
                "cools or evaporates, the minerals precipitate onto the cavity walls. Crystals grow inward from the "
                "walls because that's where they nucleate, and since nothing crowds them from the inside they can "
                "develop their ideal faces. Quartz gives clear or purple (amethyst) points; calcite gives blockier "
                "crystals.\n\nBanded outer layers are usually chalcedony, a microcrystalline quartz that formed "
                "earlier when conditions favored tiny crystals. If the cavity fills completely you get a solid "
                "'nodule' instead of a geode. The perfection you noticed is exactly what unhindered crystal growth "
                "looks like."),
             f=("Can I tell from the outside whether a rock is a geode?",
                "Sometimes. Geodes are usually roughly spherical with a bumpy, cauliflower-like skin, and they often "
                "feel light for their size because they're hollow. Shaking one occasionally produces a rattle from "
                "loose crystals. Collectors also look at where they're found: certain limestone and volcanic "
                "formations are famous for them. But the only sure test is to open it, ideally with a chain-type "
                "pipe cutter rather than a hammer, which gives two clean halves.")),
        dict(q="What actually causes earthquakes? I know it's 'plates moving' but how does that make the ground shake?",
             a=("The key idea is stick-slip. Tectonic plates move a few centimeters a year, but along a fault the "
                "rocks on each side are locked together by friction. The surrounding rock keeps deforming elastically, "
                "like a bent ruler, storing strain energy for decades or centuries.\n\nWhen the stress exceeds the "
                "strength of the locked patch, the fault ruptures. The rock on each side snaps back toward its "
                "unstrained shape, slipping meters in a few seconds. That sudden release radiates seismic waves: "
                "fast P waves (compressional, like sound), slower S waves (shearing), and surface waves that cause "
                "most of the shaking damage.\n\nThe point where rupture begins underground is the hypocenter; the "
                "spot directly above it on the surface is the epicenter. Bigger earthquakes come from ruptures that "
                "extend over larger fault areas and slip farther, which is why magnitude relates to the fault "
                "area times the slip."),
             f=("Why is each step on the magnitude scale such a big jump?",
                "Modern magnitude scales are logarithmic. One whole step up corresponds to about ten times more "
                "ground motion amplitude on a seismometer and roughly 32 times more energy released. So a magnitude 7 "
                "releases about 1,000 times the energy of a magnitude 5. That's why large earthquakes are so much "
                "more destructive than the numbers suggest, and why a handful of great earthquakes account for most "
                "of the seismic energy released worldwide.")),
        dict(q="What's the difference between igneous, sedimentary and metamorphic rocks?",
             a=("They're classified by how they formed.\n\n**Igneous** rocks crystallize from molten rock. If the "
                "magma cools slowly underground, crystals have time to grow large (granite, gabbro). If lava cools "
                "quickly at the surface, crystals stay tiny (basalt) or don't form at all (obsidian, a volcanic glass).\n\n"
                "**Sedimentary** rocks form from material deposited at the surface: grains of older rock (sandstone, "
                "shale), shells and skeletons (limestone) or minerals precipitated from water (rock salt). Layers "
                "are buried, compacted and cemented. These are the rocks that hold most fossils.\n\n"
                "**Metamorphic** rocks are existing rocks transformed by heat and pressure without melting. Shale "
                "becomes slate and then schist; limestone becomes marble; sandstone becomes quartzite. Minerals "
                "recrystallize and often line up, giving foliation or banding.\n\nThe rock cycle connects them: any "
                "type can be weathered into sediment, buried and metamorphosed, or melted and recrystallized."),
             f=None),
        dict(q="How do scientists know how old a rock is?",
             a=("For igneous rocks, mostly radiometric dating. When a mineral crystallizes it traps certain radioactive "
                "isotopes, such as uranium in zircon crystals, but excludes their decay products. From then on the "
                "parent isotope decays at a known, constant rate (its half-life) and the daughter accumulates. "
                "Measuring the ratio of daughter to parent with a mass spectrometer tells you how long the clock has "
                "been running.\n\nDifferent systems suit different ages: uranium-lead for very old rocks, "
                "potassium-argon and argon-argon for volcanic layers, and carbon-14 only for organic material younger "
                "than about 50,000 years, which is why it isn't used for rocks.\n\nSedimentary rocks are trickier, "
                "because their grains are older than the rock itself. Geologists bracket them between dated volcanic "
                "ash layers above and below, and use fossils and the principle of superposition (younger layers on "
                "top) to correlate them across regions."),
             f=None),
        dict(q="Why are some beaches black, some white and some pink?",
             a=("Sand is whatever the local rocks and organisms break down into, so its color tells you about the "
                "source.\n\nBlack sand beaches are common on volcanic islands: waves grind down basalt and volcanic "
                "glass, which are rich in dark iron and magnesium minerals. Some black sands also contain magnetite, "
                "which you can pick up with a magnet.\n\nBright white sand often comes from the skeletons of marine "
                "organisms (coral, shells and calcareous algae) broken into fragments; parrotfish grinding coral are a "
                "surprisingly large source in the tropics. Very white quartz sand also exists where the source rock "
                "was nearly pure quartz.\n\nPink sand usually gets its color from the red shells of tiny single-celled "
                "organisms called foraminifera, mixed with white coral fragments. Green sand beaches exist too, "
                "colored by the mineral olivine from volcanic rock."),
             f=None),
        dict(q="What is a fault line, and how is it different from a plate boundary?",
             a=("A fault is any fracture in rock along which the two sides have moved relative to each other. Faults "
                "range from centimeters long to hundreds of kilometers, and they're classified by the direction of "
                "slip: normal faults (the crust is stretched and one block drops), reverse or thrust faults (the crust "
                "is squeezed and one block rides up) and strike-slip faults (the blocks slide past horizontally).\n\n"
                "A plate boundary is where two tectonic plates meet. Boundaries are usually zones made of many faults "
                "rather than a single crack. The San Andreas system, for example, is a broad network of strike-slip "
                "faults accommodating motion between the Pacific and North American plates.\n\nSo every plate "
                "boundary involves faults, but most faults are not plate boundaries: many lie within plates, created "
                "by stresses transmitted from the edges or by older tectonic events."),
             f=None),
    ],
    "astronomy": [
        dict(q="Why do stars twinkle but planets mostly don't?",
             a=("Twinkling, or scintillation, is caused by Earth's atmosphere, not by the stars. Pockets of air at "
                "different temperatures have slightly different refractive indices, and as they drift across your "
                "line of sight they bend the incoming light back and forth.\n\nA star is so far away that it's "
                "effectively a point of light. Its light arrives through a very thin column of air, so a single "
                "turbulent cell can shift or dim it, and it flickers and even changes color.\n\nA planet is close "
                "enough to show a tiny disk, even if your eye can't resolve it. Light from different parts of the "
                "disk passes through slightly different air, and the fluctuations average out, so the planet shines "
                "steadily. Near the horizon, where you look through much more air, even planets can twinkle.\n\n"
                "Astronomers call the same effect 'seeing'; it's why large telescopes use adaptive optics or are "
                "placed on high mountains."),
             f=("So would stars twinkle if you looked at them from the Moon?",
                "No. With no atmosphere to distort the light, stars seen from the Moon, or from orbit, shine as steady "
                "points. That's one reason space telescopes produce such sharp images: they avoid the blurring "
                "entirely rather than correcting for it.")),
        dict(q="What causes the phases of the Moon? Is it Earth's shadow?",
             a=("It's not Earth's shadow, which is a common misconception. The Sun always lights half of the Moon, "
                "just as it lights half of Earth. The phase is simply how much of that lit half we can see from "
                "Earth as the Moon orbits us over about 29.5 days.\n\nAt new moon the Moon is roughly between us and "
                "the Sun, so the lit side faces away and we see almost nothing. As it moves along its orbit we see a "
                "growing sliver (waxing crescent), then half of the disk (first quarter), then more (waxing gibbous), "
                "until at full moon it's on the far side of Earth and we see the whole lit face. Then the sequence "
                "runs in reverse.\n\nEarth's shadow only matters during a lunar eclipse, which can happen only at "
                "full moon, when the Sun, Earth and Moon line up closely. Because the Moon's orbit is tilted about "
                "5° to Earth's, that alignment is rare, which is why we don't get an eclipse every month."),
             f=None),
        dict(q="What exactly is a light-year?",
             a=("A light-year is a distance, not a time: the distance light travels in one year in a vacuum. Light "
                "moves at about 299,792 km per second, so in a year it covers roughly 9.46 trillion kilometers.\n\n"
                "The unit is handy because interstellar distances are huge. The nearest star beyond the Sun, Proxima "
                "Centauri, is about 4.2 light-years away, meaning the light we see left it 4.2 years ago. The center "
                "of the Milky Way is about 26,000 light-years away, and the Andromeda galaxy about 2.5 million.\n\n"
                "Professional astronomers often use the parsec instead, about 3.26 light-years, which comes directly "
                "from how distances are measured by parallax: a star one parsec away appears to shift by one "
                "arcsecond as Earth moves across its orbit."),
             f=("Does that mean we could be seeing stars that no longer exist?",
                "In principle, yes, but for the stars you see with the naked eye it's very unlikely. Almost all of "
                "them are within a few thousand light-years, and stars live for millions to billions of years, so "
                "the chance that one has died in the time its light has been traveling is tiny. The idea is more "
                "relevant for distant galaxies, which we see as they were millions or billions of years ago.")),
        dict(q="Why is Mars red?",
             a=("Mars is red because its surface dust is rich in iron oxides, essentially rust. Over billions of "
                "years, iron in the Martian rocks reacted with small amounts of oxygen (from water, or from the "
                "breakdown of molecules in the atmosphere) to form minerals like hematite.\n\nThe oxidized layer is "
                "only a thin coating. Rovers that scrape or drill into the surface find grey or darker rock "
                "underneath. But the fine dust is lifted by winds and regional dust storms and spread around the "
                "whole planet, so it coats almost everything and tints the sky a butterscotch color.\n\nInterestingly, "
                "Martian sunsets look bluish: the fine dust scatters blue light forward, toward an observer looking "
                "near the Sun, which is the opposite of what happens on Earth."),
             f=None),
        dict(q="How do astronomers find planets around other stars if they can't see them?",
             a=("Mostly by their effects on the star.\n\nThe **transit method** watches a star's brightness. If a "
                "planet's orbit is edge-on to us, it passes in front of the star once per orbit and blocks a tiny "
                "fraction of the light, often less than 1%. The depth of the dip gives the planet's size relative to "
                "the star, and the interval gives its orbital period. Space telescopes have found thousands of "
                "planets this way.\n\nThe **radial velocity method** uses the fact that the star and planet orbit "
                "their common center of mass, so the star wobbles slightly. Its light is Doppler-shifted back and "
                "forth by speeds as small as a meter per second, revealing the planet's minimum mass.\n\nCombining "
                "both gives size and mass, hence density, which hints at whether a planet is rocky or gaseous. A few "
                "large, young, widely separated planets have also been imaged directly by blocking the star's glare."),
             f=None),
        dict(q="What is a neutron star?",
             a=("A neutron star is the collapsed core left behind when a massive star, roughly 8 to 20 times the "
                "Sun's mass, explodes as a supernova. The core's gravity crushes atoms so completely that electrons "
                "and protons merge into neutrons.\n\nThe result is astonishingly dense: about 1.4 solar masses packed "
                "into a sphere only about 20 km across. A teaspoon of its material would weigh on the order of a "
                "billion tonnes on Earth. Neutron stars also spin fast, because the core kept its angular momentum "
                "while shrinking, and have extremely strong magnetic fields.\n\nWhen the magnetic poles sweep beams "
                "of radio waves across Earth, we see regular pulses: a pulsar. Some pulsars are more stable than "
                "atomic clocks. If the core is too massive, even neutron pressure can't hold it up, and it collapses "
                "further into a black hole."),
             f=None),
        dict(q="Why do we have seasons? Is it because Earth is closer to the Sun in summer?",
             a=("No, distance plays only a tiny role; Earth is actually closest to the Sun in early January, during "
                "the northern winter. Seasons come from the tilt of Earth's axis, about 23.4° relative to its orbit.\n\n"
                "As Earth orbits, the axis keeps pointing the same direction in space. For part of the year the "
                "Northern Hemisphere is tilted toward the Sun: the Sun climbs higher in the sky, its rays hit the "
                "ground more directly (concentrating the energy on a smaller area) and days are longer. That's summer. "
                "Six months later the same hemisphere tilts away: low Sun, slanting rays, short days, winter.\n\n"
                "The hemispheres have opposite seasons at the same time, which is the clearest evidence that "
                "distance isn't the cause. A planet with no tilt would have almost no seasons at all."),
             f=None),
    ],
    "weather": [
        dict(q="How does hail form, especially in summer when it's warm on the ground?",
             a=("Hail needs a strong thunderstorm updraft. Even on a hot day, the air a few kilometers up is well "
                "below freezing, and powerful updrafts carry raindrops high into that cold part of the cloud, where "
                "they freeze into small ice pellets.\n\nThe pellets grow by colliding with supercooled water droplets, "
                "tiny drops that remain liquid below 0 °C, which freeze on contact and add layers of ice. A stone may "
                "be lifted and fall back several times, or simply hang in a balanced updraft while it grows; cut one "
                "open and you'll often see onion-like layers of clear and cloudy ice.\n\nWhen the hailstone becomes "
                "too heavy for the updraft to support, it falls. Large hail requires very strong updrafts, which is "
                "why it's associated with severe summer storms, when the ground heating makes the atmosphere "
                "unstable. The stones fall fast enough that they don't melt completely before reaching the ground."),
             f=None),
        dict(q="If clouds are made of water, why don't they just fall?",
             a=("They are falling, just extremely slowly. Cloud droplets are tiny, typically about 10 to 20 micrometers "
                "across. For particles that small, air resistance is huge compared with their weight, so their "
                "terminal velocity is only around a centimeter per second.\n\nMeanwhile the air in and under clouds is "
                "usually rising, often by much more than a centimeter per second, because clouds form precisely where "
                "air is being lifted and cooled. The gentle updrafts easily keep the droplets suspended. Droplets that "
                "drift down into drier air below the cloud simply evaporate, which is why cloud bases are often flat.\n\n"
                "Rain begins when droplets grow a million-fold in volume, by colliding and merging or, in cold clouds, "
                "by ice crystals growing at the expense of droplets, until they're heavy enough to fall through the updraft."),
             f=("And why are clouds white but storm clouds dark?",
                "Cloud droplets scatter all visible wavelengths about equally, so sunlight bouncing around inside a "
                "cloud comes out white. A thick storm cloud scatters and absorbs so much light that little passes "
                "through to its underside, so from below it looks grey or nearly black, even though its sunlit top, "
                "seen from an aircraft, is brilliantly white.")),
        dict(q="What is the dew point, and why do forecasters care about it?",
             a=("The dew point is the temperature to which air must be cooled, at constant pressure and moisture, for "
                "it to become saturated. Cool it any further and water vapor condenses into dew, fog or cloud.\n\n"
                "Unlike relative humidity, which changes all day as the temperature rises and falls, the dew point "
                "measures the actual amount of moisture in the air. That makes it a better guide to how muggy it "
                "feels: a dew point above about 20 °C feels oppressive almost regardless of the temperature, while "
                "one below 10 °C feels dry.\n\nForecasters use it in several ways: the gap between temperature and "
                "dew point predicts fog and low cloud overnight; a high dew point supplies fuel for thunderstorms; and "
                "the dew point sets a rough floor for how far the temperature can fall on a calm night, because "
                "condensation releases heat."),
             f=None),
        dict(q="How do hurricanes form?",
             a=("Hurricanes (called typhoons or cyclones elsewhere) are heat engines powered by warm ocean water. They "
                "need sea surface temperatures of roughly 26.5 °C or more, moist air, weak wind shear so the storm "
                "isn't torn apart, and enough distance from the equator for the Coriolis effect to start the rotation.\n\n"
                "It usually begins with a cluster of thunderstorms. Warm, moist air rises, the water vapor condenses "
                "and releases latent heat, which warms the column and lowers the surface pressure. Air spirals in to "
                "replace it, picking up more moisture from the ocean, and the cycle reinforces itself. The spin "
                "comes from Earth's rotation deflecting the inflowing air.\n\nAs the storm organizes, a calm eye forms "
                "at the center, surrounded by the eyewall with the strongest winds. Over land or cold water the fuel "
                "supply is cut off and the storm weakens, although its rain can still cause severe flooding."),
             f=None),
        dict(q="What causes lightning?",
             a=("Inside a thunderstorm, strong updrafts carry water droplets, ice crystals and soft hail (graupel) "
                "past each other. Collisions between ice crystals and graupel transfer electric charge: typically the "
                "lighter crystals become positive and are carried to the top of the cloud, while the heavier graupel "
                "becomes negative and stays lower down.\n\nThe charge separation builds an enormous electric field. "
                "Air is normally a good insulator, but when the field is strong enough, a channel of ionized air "
                "called a stepped leader works its way down in short jumps. When it approaches the ground, a "
                "streamer rises to meet it, the circuit closes, and a powerful return stroke surges up the channel. "
                "That's the bright flash.\n\nThe channel heats to around 30,000 °C in microseconds, and the air "
                "expands explosively, producing thunder. Because light arrives almost instantly and sound travels "
                "about a kilometer in three seconds, counting the gap gives the distance."),
             f=None),
        dict(q="Why do we see rainbows, and why are they curved?",
             a=("A rainbow appears when sunlight enters raindrops, reflects once off the back of each drop and exits "
                "again. Each time the light crosses the surface it refracts, and because the amount of bending depends "
                "on wavelength, the colors separate: red exits at about 42° from the direction opposite the Sun, "
                "violet at about 40°.\n\nSo you see red from all the drops that sit 42° from the antisolar point (the "
                "shadow of your head) and violet from drops at 40°. The set of points at a fixed angle from a center "
                "is a circle, which is why the rainbow is an arc; the ground usually cuts off the lower part. From "
                "an airplane you can sometimes see a complete circle.\n\nA fainter secondary bow, with the colors "
                "reversed, comes from two internal reflections, at about 51°. Because every observer has their own "
                "antisolar point, no two people see exactly the same rainbow."),
             f=None),
    ],
    "oceans": [
        dict(q="Why is the sea salty but rivers aren't?",
             a=("Rivers do carry salt, just in tiny concentrations. Rainwater is slightly acidic, and as it flows over "
                "rocks it dissolves small amounts of minerals, sodium, calcium, magnesium, potassium and others, and "
                "carries them to the sea. Undersea hydrothermal vents and volcanic activity add chloride and other "
                "ions from below.\n\nThe crucial difference is that the ocean has no outlet except evaporation, and "
                "evaporation removes only water, leaving the dissolved salts behind. Over hundreds of millions of "
                "years, salts accumulated until input was balanced by removal processes, such as minerals "
                "precipitating onto the seafloor and being incorporated into sediments.\n\nThe result is a remarkably "
                "stable average salinity of about 35 grams per kilogram of seawater, mostly sodium chloride. Lakes "
                "with no outlet, like the Dead Sea or the Great Salt Lake, become salty for the same reason."),
             f=None),
        dict(q="How do ocean waves form, and why do they get so big in storms?",
             a=("Most ocean waves are made by wind. Friction and pressure differences between moving air and the "
                "water surface transfer energy to the water, first as tiny ripples; once ripples exist, the wind can "
                "push on their faces more effectively, and they grow.\n\nWave size depends on three things: wind "
                "speed, how long the wind blows, and the fetch, the distance of open water over which it blows. A "
                "strong storm blowing for days across a long stretch of ocean builds huge waves. Once they leave the "
                "storm, the waves sort themselves by speed into long, regular swell that can travel thousands of "
                "kilometers.\n\nThe water itself doesn't travel with the wave; each parcel moves in a roughly circular "
                "orbit and ends up nearly where it started. When the wave reaches shallow water, the bottom slows it, "
                "it grows taller and steeper, and finally breaks."),
             f=("What makes a rogue wave?",
                "Rogue waves are waves more than about twice the height of the surrounding large waves. The leading "
                "explanations are constructive interference, where several wave trains happen to line up their "
                "crests, wave energy being focused by currents flowing against the waves, and nonlinear effects in "
                "which one wave draws energy from its neighbors. They were once dismissed as sailors' stories, until "
                "instruments on an oil platform recorded one in 1995.")),
        dict(q="What are hydrothermal vents?",
             a=("Hydrothermal vents are hot springs on the seafloor, usually found along mid-ocean ridges where "
                "tectonic plates pull apart. Seawater seeps down through cracks in the young crust, is heated by "
                "magma below to temperatures that can exceed 350 °C (it doesn't boil because of the enormous pressure), "
                "and dissolves metals and sulfur from the surrounding rock.\n\nWhen this hot, mineral-laden fluid "
                "gushes back out into near-freezing seawater, the minerals precipitate instantly, producing clouds of "
                "black particles, hence the name 'black smokers', and building chimneys of metal sulfides.\n\nThe "
                "vents host entire ecosystems that don't depend on sunlight: bacteria get energy by chemosynthesis, "
                "oxidizing hydrogen sulfide, and support tube worms, clams, shrimp and crabs. Their discovery in 1977 "
                "changed ideas about where life can exist and possibly where it began."),
             f=None),
        dict(q="What is the global ocean conveyor belt?",
             a=("It's the nickname for thermohaline circulation, a slow, planet-wide loop of ocean currents driven by "
                "differences in water density, which depends on temperature ('thermo') and salinity ('haline').\n\n"
                "In the far North Atlantic and around Antarctica, surface water becomes very cold and, as sea ice "
                "forms and leaves salt behind, very salty. That cold, salty water is dense, so it sinks to the deep "
                "ocean and spreads slowly toward the other basins. Eventually it wells back up, mainly in the "
                "Southern Ocean and the Pacific, and returns as surface currents.\n\nA full circuit takes on the "
                "order of a thousand years. The circulation carries enormous amounts of heat; the Atlantic branch "
                "helps keep northwestern Europe milder than other regions at the same latitude. Scientists monitor it "
                "closely because fresh meltwater could make surface water less dense and slow the sinking."),
             f=None),
    ],
    "technology": [
        dict(q="How does a touchscreen know where my finger is?",
             a=("Most phones and tablets use projected capacitive touchscreens. Under the glass is a transparent grid "
                "of conductive lines, usually indium tin oxide, arranged in rows and columns. The controller "
                "measures the capacitance at each intersection many times per second.\n\nYour finger is conductive and "
                "holds charge, so when it comes close it disturbs the electric field at nearby intersections and "
                "changes their capacitance slightly. The controller scans the grid, finds where the changes are, and "
                "interpolates between grid lines to compute the touch position with much finer precision than the "
                "grid spacing. Because each intersection is measured separately, several touches can be tracked at "
                "once.\n\nThis is also why ordinary gloves don't work (the insulating fabric blocks the effect) and why "
                "touchscreen gloves have conductive threads in the fingertips. Water droplets can cause false touches "
                "for the same reason."),
             f=None),
        dict(q="How do solar cells turn light into electricity?",
             a=("A typical solar cell is a thin wafer of silicon with two layers: one doped to have extra electrons "
                "(n-type) and one doped to have electron vacancies, or holes (p-type). Where they meet, a p-n junction "
                "forms with a built-in electric field.\n\nWhen a photon with enough energy is absorbed, it knocks an "
                "electron loose, creating an electron-hole pair. The junction's field pushes the electron toward the "
                "n side and the hole toward the p side, so they can't simply recombine. Metal contacts collect them, "
                "and if you connect an external circuit, the electrons flow through it as current.\n\nEach silicon "
                "cell produces only about 0.5 to 0.6 volts, so panels wire dozens of cells in series. Efficiency is "
                "limited because photons with too little energy aren't absorbed and the excess energy of "
                "high-energy photons is lost as heat; commercial panels convert roughly 20 to 23% of sunlight."),
             f=("Why do panels produce less on hot days if they need sunlight?",
                "Because the cell voltage drops as temperature rises, by roughly 0.3 to 0.5% of output per degree "
                "Celsius for silicon. On a very hot roof, cells can run 25 °C or more above the air temperature, "
                "costing a noticeable fraction of their rated power. That's why cold, clear, sunny days often give "
                "the best peak output, and why panels are mounted with an air gap for cooling.")),
        dict(q="How do QR codes work? How can my phone read one at an angle?",
             a=("A QR code stores data as a grid of black and white modules. The three large squares in the corners "
                "are finder patterns: their distinctive 1:1:3:1:1 ratio of dark and light is easy to detect from any "
                "direction, so the scanner can locate the code, work out its orientation and correct for perspective "
                "when you hold the phone at an angle. Smaller alignment patterns and alternating timing lines help it "
                "map the exact grid.\n\nOnce the grid is sampled, format information tells the reader which "
                "error-correction level and mask pattern were used. The mask is applied to avoid large blank areas "
                "that confuse scanners. The data itself is encoded in bytes with Reed-Solomon error correction, which "
                "is why a QR code still works when part of it is dirty, damaged or covered by a logo: at the highest "
                "level, about 30% of the code can be lost and the data recovered."),
             f=None),
        dict(q="How do lithium-ion batteries work, and why do they wear out?",
             a=("A lithium-ion cell has two electrodes, typically graphite on one side and a lithium metal oxide on "
                "the other, separated by a porous membrane soaked in an electrolyte. When you charge it, lithium "
                "ions move from the oxide through the electrolyte and slot in between the graphite layers, while "
                "electrons travel through the external charger. Discharging reverses the flow, and the electrons "
                "power your device on their way.\n\nWear comes from side reactions. A thin film called the solid "
                "electrolyte interphase grows on the graphite, consuming lithium that can no longer shuttle back and "
                "forth. The electrode materials also crack slightly as they swell and shrink each cycle.\n\nHeat and "
                "time at very high charge speed these processes up, which is why many devices now offer to stop "
                "charging at around 80% and why a battery left hot and full ages fastest."),
             f=None),
        dict(q="What does a transistor actually do?",
             a=("At heart, a transistor is a switch or valve controlled by electricity: a small signal on one terminal "
                "controls a much larger current between the other two.\n\nIn a MOSFET, the type in every modern chip, "
                "current can flow between the source and drain through a thin channel of semiconductor. A voltage on "
                "the gate, which is insulated from the channel by a very thin oxide layer, creates an electric field "
                "that either attracts charge carriers into the channel (switching it on) or depletes them (switching "
                "it off). No current flows into the gate itself, which is why these transistors can be so efficient.\n\n"
                "Used as switches, transistors implement logic: combinations of them form gates like AND and NOT, and "
                "billions of gates form a processor. Used in their in-between region, they act as amplifiers, which "
                "was their first big application in radios."),
             f=None),
        dict(q="How does fiber optic cable carry data?",
             a=("An optical fiber is a strand of extremely pure glass with a core surrounded by cladding of slightly "
                "lower refractive index. Light sent down the core hits the core-cladding boundary at a shallow angle "
                "and undergoes total internal reflection, bouncing along the fiber even around gentle bends.\n\nData is "
                "encoded by switching or modulating a laser very rapidly. Modern systems vary the light's intensity, "
                "phase and polarization, and send many wavelengths (colors) down the same fiber at once, each an "
                "independent channel. A single fiber can carry terabits per second.\n\nThe glass is so transparent at "
                "infrared wavelengths around 1550 nm that signals lose only about 0.2 dB per kilometer, so they can "
                "travel around 80 km or more before an amplifier is needed. Fibers are also immune to electrical "
                "interference, which is why they form the backbone of the internet, including undersea cables."),
             f=None),
    ],
    "programming": [
        dict(q="Why does 0.1 + 0.2 print 0.30000000000000004 in Python?",
             a=("Because floats are stored in binary, and 0.1 and 0.2 have no exact binary representation, just as "
                "1/3 has no exact decimal one. Python's floats are IEEE 754 double-precision numbers, with 53 bits "
                "of precision, so 0.1 is stored as the nearest representable value, which is very slightly more than "
                "0.1. The same happens with 0.2. When you add them, the tiny errors combine and the result lands on "
                "the float just above 0.3.\n\nThis isn't a Python bug; JavaScript, Java and C show the same thing. "
                "Practical consequences:\n\n- Don't compare floats with `==`; use `math.isclose(a, b)`.\n- For money "
                "or anything needing exact decimal arithmetic, use `decimal.Decimal('0.1')` (note the string) or "
                "work in integer cents.\n- For exact fractions, `fractions.Fraction(1, 10)` works.\n\nWhen you print a "
                "float, Python shows the shortest string that round-trips to the same value, which is why 0.1 on its "
                "own still displays as 0.1."),
             f=None),
        dict(q="Can you explain recursion in simple terms? My textbook's explanation lost me.",
             a=("A recursive function solves a problem by calling itself on a smaller version of the same problem, "
                "until it reaches a case so small that the answer is obvious.\n\nTwo parts are always needed:\n\n"
                "1. A **base case** that returns an answer directly, without recursing.\n2. A **recursive case** that "
                "shrinks the problem and trusts the function to solve the smaller piece.\n\nFactorial is the classic "
                "example:\n\n```python\ndef factorial(n):\n    if n <= 1:          # base case\n        return 1\n"
                "    return n * factorial(n - 1)   # recursive case\n```\n\nfactorial(4) asks for 4 × factorial(3), which "
                "asks for 3 × factorial(2), and so on down to factorial(1) = 1. Then the pending multiplications "
                "resolve on the way back up: 2, 6, 24.\n\nThe trick is not to trace every call in your head, but to "
                "assume the smaller call works and check that you combine its result correctly. Forgetting the "
                "base case, or not shrinking the input, leads to infinite recursion."),
             f=("Is recursion slower than a loop?",
                "Often slightly, in languages like Python, because each call has overhead and uses a stack frame; "
                "Python also caps recursion depth at around 1,000 by default. Anything you can write recursively you "
                "can write with a loop and an explicit stack. Recursion shines when the data itself is recursive, "
                "like trees, nested folders or parsing expressions, where the loop version is harder to read.")),
        dict(q="What's the difference between a list and a tuple in Python? When should I use each?",
             a=("Both are ordered sequences that can hold any objects. The main difference is mutability: lists can be "
                "changed after creation (append, remove, reassign items) and tuples cannot.\n\nThat difference drives "
                "how they're used:\n\n- Use a **list** for a collection of similar items whose size or contents "
                "change, such as readings you're accumulating.\n- Use a **tuple** for a fixed group of related "
                "values, often of different types, like a coordinate (x, y) or a row returned from a database. "
                "Functions that return several values actually return a tuple.\n\nBecause tuples are immutable (and "
                "if their contents are hashable), they can be dictionary keys or set members; lists can't. Tuples "
                "are also slightly smaller and faster to create.\n\nOne subtlety: a tuple containing a list is still "
                "immutable in the sense that you can't replace the list, but the list itself can be modified."),
             f=None),
        dict(q="What is Big-O notation, in plain words?",
             a=("Big-O describes how the running time (or memory) of an algorithm grows as the input gets larger, "
                "ignoring constant factors and small terms. It answers: if I double the input, roughly what happens "
                "to the cost?\n\nCommon classes:\n\n- O(1): constant, like looking up a key in a dictionary.\n"
                "- O(log n): grows very slowly, like binary search, which halves the range each step.\n"
                "- O(n): linear, like scanning a list once.\n- O(n log n): efficient sorting algorithms.\n"
                "- O(n²): nested loops over the same data, like comparing every pair.\n\nFor a million items, the gap "
                "is enormous: a linear scan takes about a million steps, a quadratic algorithm about a trillion.\n\n"
                "Big-O is usually quoted for the worst case and says nothing about constants, so for small inputs a "
                "'worse' algorithm can be faster in practice. It's a tool for predicting how things scale, not for "
                "timing exact programs."),
             f=None),
        dict(q="What's the difference between git merge and git rebase?",
             a=("Both integrate changes from one branch into another; they differ in the history they leave.\n\n"
                "**Merge** creates a new merge commit that ties the two histories together. Nothing is rewritten: "
                "you can see exactly when branches diverged and came back together. The downside is a history full "
                "of merge commits that can be harder to read.\n\n**Rebase** takes your branch's commits and replays "
                "them on top of the other branch, creating new commits with new hashes. The result is a straight, "
                "linear history, as if you'd started your work from the latest code.\n\nThe golden rule: don't rebase "
                "commits that others have already pulled, because rewriting shared history forces everyone else to "
                "reconcile their copies. A common workflow is to rebase your own local feature branch onto main to "
                "tidy it up, then merge it (or fast-forward) into main."),
             f=("What does 'git pull --rebase' do then?",
                "A plain `git pull` fetches the remote changes and merges them into your branch, which can create a "
                "small merge commit every time you sync. `git pull --rebase` fetches and then rebases your local, "
                "unpushed commits on top of what you fetched, keeping the history linear. Since those commits "
                "haven't been shared yet, rewriting them is safe. You can make it the default with "
                "`git config pull.rebase true`.")),
        dict(q="What is a race condition?",
             a=("A race condition is a bug where the result depends on the unpredictable timing of two or more "
                "threads or processes accessing shared data, and at least one of them is writing.\n\nThe classic "
                "example is two threads incrementing a shared counter. `counter += 1` looks atomic but is really "
                "three steps: read the value, add one, write it back. If both threads read 5 before either writes, "
                "both write 6, and one increment is lost. Run it a million times and the final count comes up short by "
                "a different amount each time.\n\nFixes include protecting the critical section with a lock so only one "
                "thread runs it at a time, using atomic operations provided by the language or hardware, or avoiding "
                "shared mutable state altogether, for example by passing messages through a queue.\n\nRace conditions "
                "are notoriously hard to debug because adding print statements changes the timing and can make the "
                "bug disappear."),
             f=None),
        dict(q="How does a hash table give constant-time lookups?",
             a=("A hash table stores entries in an array of buckets. To insert a key, it runs the key through a hash "
                "function that turns it into a number, and uses that number (modulo the array size) as the bucket "
                "index. To look the key up later, it computes the same hash and goes straight to that bucket, "
                "without searching the rest.\n\nTwo different keys can land in the same bucket, a collision. Tables "
                "handle that either by keeping a small list in each bucket (chaining) or by probing the next slots "
                "(open addressing). As long as the hash spreads keys evenly and the table isn't too full, each bucket "
                "holds only a few items, so lookups take constant time on average.\n\nWhen the table fills past a "
                "load factor, it allocates a bigger array and re-inserts everything. That occasional resize is "
                "expensive, but spread over many insertions the average cost stays constant. Python's dict and set "
                "are hash tables, which is why keys must be hashable."),
             f=None),
    ],
    "games": [
        dict(q="What are the exact rules for castling in chess? My friend and I disagree.",
             a=("Castling is a single move of the king and one rook. The king moves two squares toward the rook, and "
                "the rook jumps to the square the king crossed. It's legal only if all of these hold:\n\n1. Neither the "
                "king nor that rook has moved earlier in the game.\n2. All squares between them are empty.\n3. The "
                "king is not currently in check.\n4. The king does not pass through a square attacked by an enemy "
                "piece.\n5. The king does not end up in check (true of any move).\n\nCommon points of confusion: the "
                "rook *may* be under attack, and on the queenside the rook may pass over an attacked square (b1 or "
                "b8), because only the king's path matters. Having been in check earlier doesn't prevent castling "
                "later, as long as the king never moved.\n\nIn tournament play, touch the king first; picking up the "
                "rook first can be treated as a rook move."),
             f=("And how does en passant work?",
                "If a pawn advances two squares from its starting position and lands beside an enemy pawn, that enemy "
                "pawn may capture it as if it had moved only one square: it moves diagonally to the square the pawn "
                "skipped, and the pawn is removed. The catch is timing: the capture must be made immediately, on the "
                "very next move, or the right is lost.")),
        dict(q="In Go, what is the ko rule and why does it exist?",
             a=("Ko arises when a single stone captures a single stone and could immediately be recaptured, returning "
                "the board to exactly the position before. Without a rule, the two players could capture back and "
                "forth forever.\n\nThe basic ko rule says you may not make a move that recreates the board position "
                "right after your own previous move. In practice, after your opponent takes a ko, you must first play "
                "somewhere else, a 'ko threat', which your opponent may answer or ignore. If they answer, you may then "
                "retake the ko; if they instead end the ko, you get compensation from your threat.\n\nKo fights are a "
                "central part of strategy: the number and size of available threats decide who wins them. Some rule "
                "sets extend the idea to 'superko', banning any repetition of an earlier whole-board position, to "
                "deal with rare longer cycles."),
             f=None),
        dict(q="How does bearing off work in backgammon?",
             a=("You can start bearing off only once all fifteen of your checkers are in your home board, the last "
                "quarter of the track. From then on, each die lets you remove a checker from the point that matches "
                "the number: a 4 removes a checker from your 4-point, and so on.\n\nIf there's no checker on the "
                "matching point, you must make a legal move with a checker on a higher point if possible. If there "
                "are no checkers on higher points, you may bear off from the highest occupied point instead; a 6 "
                "with your furthest checker on the 4-point, for instance, removes that checker.\n\nYou can also use "
                "a die to move within the home board rather than bear off. If one of your checkers is hit during the "
                "bear-off, it goes to the bar, and you can't bear off again until it has come back around into your "
                "home board. The first to remove all fifteen wins."),
             f=None),
        dict(q="In checkers, do you have to take a jump if one is available?",
             a=("Under the standard rules used in English draughts and American checkers, yes: capturing is "
                "compulsory. If any jump is available, you must take one, although if several are available you may "
                "choose which.\n\nA multi-jump must also be completed: if, after a jump, the same piece can jump "
                "again, it must continue. A regular piece moves and jumps only diagonally forward; once it reaches "
                "the far row it's crowned a king, which can move and jump diagonally backward as well. If a piece is "
                "crowned in the middle of a multi-jump, the move ends there.\n\nThe old 'huffing' rule, where a piece "
                "that failed to jump was removed, is no longer used in official play; the illegal move is simply "
                "taken back. Many casual players don't know jumps are mandatory, and the rule changes the strategy "
                "completely, because you can force your opponent into a capture that sets up a bigger one for you."),
             f=None),
        dict(q="In Scrabble, how do blank tiles work when scoring?",
             a=("A blank tile can stand for any letter, which you name when you play it, and it keeps that letter for "
                "the rest of the game. It's worth zero points, though.\n\nSo if you play a blank as a Q, the Q scores "
                "nothing. Premium squares still multiply: a word containing the blank that covers a double- or "
                "triple-word square is still multiplied, but a blank on a double-letter square gives twice zero. "
                "Placing a blank on a letter premium is therefore a waste; it's better to put your high-value real "
                "tiles there.\n\nBlanks are the most valuable tiles in the game anyway, because they make seven-letter "
                "plays, which earn the 50-point bonus, far more likely. Experienced players rarely spend a blank for "
                "a small score."),
             f=None),
    ],
    "science_history": [
        dict(q="How did Eratosthenes measure the size of the Earth?",
             a=("Around 240 BCE, Eratosthenes, the librarian at Alexandria, heard that at noon on the summer solstice "
                "the Sun shone straight down a well in Syene (modern Aswan), meaning it was directly overhead. On the "
                "same day in Alexandria, roughly north of Syene, a vertical stick cast a shadow showing the Sun was "
                "about 7.2° from vertical.\n\nAssuming the Sun is so far away that its rays arrive parallel, the only "
                "explanation for the difference is Earth's curvature: the angle between the two places, measured at "
                "Earth's center, must also be 7.2°, which is 1/50 of a full circle. So the circumference is 50 times "
                "the distance between the cities.\n\nHe used a distance of about 5,000 stadia, giving 250,000 stadia. "
                "Depending on which stadion length he used, that's within roughly 2 to 15% of the true value of about "
                "40,000 km, a remarkable result from a stick, a shadow and careful reasoning."),
             f=None),
        dict(q="Why did Roman concrete last so long when modern concrete cracks?",
             a=("Roman builders mixed lime with volcanic ash, especially from around the Bay of Naples, and chunks of "
                "rock. The ash is a pozzolan: it reacts with lime and water to form strong, stable binding minerals.\n\n"
                "Recent research points to two extra secrets. First, in marine structures, seawater percolating "
                "through the concrete reacted with the ash to grow interlocking crystals such as aluminous tobermorite, "
                "which actually strengthened the material over time. Second, the Romans seem to have used 'hot mixing' "
                "with quicklime, which left small white lime clasts in the concrete. When cracks later formed and "
                "water seeped in, these clasts dissolved and recrystallized as calcium carbonate, sealing the cracks: "
                "a form of self-healing.\n\nModern concrete is far stronger in compression and sets much faster, but "
                "it's usually reinforced with steel, and rusting steel expands and cracks it; Roman concrete had no "
                "steel to corrode."),
             f=None),
        dict(q="What was the Antikythera mechanism?",
             a=("It's an ancient Greek device, recovered in 1901 from a shipwreck off the island of Antikythera and "
                "dated to roughly the second or first century BCE. It survives as corroded bronze fragments, but X-ray "
                "CT scans have revealed at least 30 interlocking gear wheels.\n\nTurning a hand crank moved pointers "
                "showing the positions of the Sun and Moon in the zodiac, the phase of the Moon, and very likely the "
                "planets known at the time. Dials on the back predicted solar and lunar eclipses using the 18-year "
                "saros cycle and tracked a four-year cycle of athletic games. A clever pin-and-slot gear arrangement "
                "even reproduced the Moon's varying speed across the sky.\n\nNothing of comparable mechanical "
                "complexity is known until medieval astronomical clocks more than a thousand years later, which is "
                "why it's often called the first analog computer."),
             f=None),
        dict(q="How did early sailors determine latitude and longitude?",
             a=("Latitude was the easier one. In the Northern Hemisphere, the height of the Pole Star above the "
                "horizon roughly equals your latitude. By day, navigators measured the Sun's altitude at local noon "
                "with instruments like the astrolabe, the cross-staff and later the sextant, and used tables of the "
                "Sun's declination to compute latitude.\n\nLongitude was the great problem, because it depends on "
                "time: every 15° of longitude corresponds to one hour difference in local time. To find it, you need "
                "to know the time at a reference meridian while at sea. Pendulum clocks failed on rolling ships.\n\n"
                "Two solutions emerged in the 18th century: John Harrison's marine chronometers, which kept accurate "
                "time at sea, and the lunar distance method, which used the Moon's position against the stars as a "
                "celestial clock. Before that, sailors relied on dead reckoning from speed, heading and time."),
             f=None),
    ],
}


# Closing paragraphs an explainer may end with, by field (at most one is added to an answer).
RELATED: dict[str, list[str]] = {
    "geology": [
        ("If you'd like to see this for yourself, road cuts and quarries are wonderful open-air textbooks, since "
         "they expose fresh rock. A hand lens with 10× magnification, a streak plate and a steel nail for testing "
         "hardness are all you need to start identifying what you find."),
        ("Geological maps, which many national surveys publish online for free, show which rock units lie under "
         "your area and how old they are. They're a great way to connect a single rock you picked up to the much "
         "bigger story of the landscape."),
        ("Time is the hardest part of geology to grasp intuitively. If the 4.5-billion-year history of Earth were "
         "squeezed into a single day, the dinosaurs would vanish about 20 minutes before midnight, and all of "
         "recorded human history would fit into the last fraction of a second."),
    ],
    "astronomy": [
        ("You don't need a telescope to start observing: a pair of ordinary binoculars shows the Moon's craters, "
         "Jupiter's four largest moons and many star clusters. A free planetarium app or a printed star chart "
         "helps you find your way around the sky."),
        ("Light pollution makes a huge difference. Even a short drive away from city lights, on a moonless night, "
         "reveals thousands more stars and often the Milky Way itself. Give your eyes twenty minutes to adapt, "
         "and use a red light so you don't lose that night vision."),
        ("Many of these ideas can be explored with simple experiments, like a lamp and a ball for Moon phases and "
         "eclipses, or a prism for spectra. Physically acting out the geometry often makes it click in a way "
         "diagrams don't."),
    ],
    "weather": [
        ("If you're curious to watch these processes, a simple home weather station or even a thermometer, a "
         "barometer and a rain gauge, read at the same time each day, teach a lot. Pressure trends in particular "
         "are a surprisingly good short-term forecasting tool."),
        ("Cloud spotting is another easy way in. The ten basic cloud types, from high wispy cirrus to towering "
         "cumulonimbus, each tell you something about the moisture and stability of the air at their level, and "
         "they often herald the weather to come."),
        ("Weather services publish their radar and satellite imagery freely online. Watching a storm develop on "
         "satellite loops over a few hours is one of the best ways to connect these explanations to the real "
         "atmosphere."),
    ],
    "oceans": [
        ("Oceanographers study these processes with an impressive fleet of instruments, including thousands of "
         "autonomous floats that drift with the currents and periodically dive to 2,000 meters, measuring "
         "temperature and salinity and radioing the data home by satellite."),
        ("Despite covering about 70% of the planet, the ocean floor is still mapped in less detail than the surface "
         "of Mars, because radar can't see through water and ships with sonar cover only narrow strips at a time."),
        ("Tide tables, wave buoys and sea temperature maps are all published online, and looking at them for a "
         "stretch of coast you know is a nice way to see these ideas in action."),
    ],
    "technology": [
        ("A good way to build intuition for this kind of technology is to take apart something broken, safely and "
         "with the power source removed. Seeing the layers and components in person makes the explanations much "
         "more concrete."),
        ("Most of these inventions rest on physics that was understood long before the devices became practical. "
         "The hard part was usually materials and manufacturing: making something reliable, cheap and small "
         "enough to put in millions of products."),
        ("If you want to go deeper, the original patents are often surprisingly readable and freely searchable "
         "online. They include diagrams and explain the problem the inventors were trying to solve."),
    ],
    "programming": [
        ("The best way to make this stick is to experiment in an interactive session: try small variations, "
         "predict the output before you run each one, and investigate whenever you're surprised. A few minutes "
         "of that is worth pages of reading."),
        ("The official documentation and tutorials for most languages are excellent and cover these topics with "
         "examples. When a blog post and the docs disagree, the docs are usually right and more up to date."),
        ("When you run into a bug related to this, try to reduce it to the smallest program that still shows the "
         "problem. The act of shrinking it very often reveals the cause on its own."),
    ],
    "games": [
        ("Official rulebooks and the websites of national federations are the final word on questions like this, "
         "and they're usually free to read. House rules are fine for casual play, but agreeing on them before "
         "the game starts avoids arguments later."),
        ("Rules that look odd at first usually exist to prevent a particular loophole or endless repetition. "
         "Knowing the reason behind a rule makes it much easier to remember and to apply in unusual positions."),
        ("If you play online, the software enforces these rules automatically, which is a handy way to test your "
         "understanding: set up the position and see which moves the program allows."),
    ],
    "science_history": [
        ("Stories like this are a reminder that clever reasoning can go a long way with very simple tools. Many "
         "museums and universities publish accessible accounts of these episodes, often with reconstructions "
         "you can try at home."),
        ("Historians keep revising these accounts as new evidence appears, so popular versions are sometimes "
         "simplified or even mythologized. Where possible, it's worth looking at what the original sources "
         "actually say."),
        ("Reproducing a historical measurement yourself, with modern data or a simple setup, is a memorable way "
         "to appreciate both the achievement and its limitations."),
    ],
}

EXPLAINER_LEADS = ["", "", "Random question: ", "I've always wondered: ", "My nephew asked me this and I had no idea: ",
                   "Settle a debate for us: ", "Here's something I've never understood: "]


# ---------------------------------------------------------------------------------------------
# Proofreading: a passage from the explainers with a few errors slipped in, and its correction
# ---------------------------------------------------------------------------------------------

SWAPS = [  # (correct word, wrong word, why)
    ("its", "it's", "'its' is the possessive; 'it's' always means 'it is' or 'it has'"),
    ("than", "then", "a comparison takes 'than'; 'then' is about time or sequence"),
    ("their", "there", "'their' shows possession; 'there' refers to a place"),
    ("whose", "who's", "'whose' is possessive; 'who's' means 'who is'"),
    ("fewer", "less", "'fewer' goes with things you can count"),
    ("lose", "loose", "'lose' means to fail to keep; 'loose' means not tight"),
    ("too", "to", "'too' means 'also' or 'excessively'"),
    ("principle", "principal", "'principle' is a rule or idea; 'principal' means main, or a person in charge"),
    ("affect", "effect", "'affect' is the verb here"),
    ("effect", "affect", "'effect' is the noun here"),
    ("passes", "passed", "the sentence is in the present tense"),
]
NOT_POSSESSIVE = {"it", "that", "what", "there", "here", "he", "she", "who", "let"}
PROOF_PURPOSES = ["a club newsletter", "a science outreach handout", "a volunteer guide at the museum",
                  "a short blog post", "a presentation for my local astronomy group", "a community talk",
                  "a leaflet for a school open day", "the notes I'm sharing with a study group"]
PROOF_ASKS = ["Could you proofread this for {p}?", "Can you fix any mistakes in this paragraph? It's for {p}.",
              "Please check this text for errors before it goes into {p}.",
              "I wrote this for {p}. Any typos or grammar problems?"]


def _passages() -> list[str]:
    """Plain prose passages (one or two paragraphs, no code or lists) taken from the explainers."""
    out = []
    for domain in sorted(EXPLAINERS):
        for entry in EXPLAINERS[domain]:
            # The first paragraph answers the question directly, so it doesn't stand alone: skip it.
            paras = [p for p in entry["a"].split("\n\n")[1:] if "```" not in p and "\n" not in p and "**" not in p]
            for i in range(0, len(paras) - 1, 2):
                out.append(paras[i] + "\n\n" + paras[i + 1])
    return out


def _error_sites(text: str) -> list[tuple[int, int, str, str]]:
    """Places where an error can be introduced: (start, end, wrong text, explanation)."""
    sites = []
    for right, wrong, why in SWAPS:
        m = re.search(rf"\b{right}\b", text)
        if m:
            sites.append((m.start(), m.end(), wrong, f"'{wrong}' → '{right}': {why}."))
    for m in re.finditer(r"\b([A-Za-z]+)'s\b", text):
        if m.group(1).lower() not in NOT_POSSESSIVE:
            sites.append((m.start(), m.end(), m.group(1) + "s",
                          f"'{m.group(1)}s' → '{m.group(0)}': the possessive needs an apostrophe."))
            break
    m = re.search(r"\bthe (?=[a-z])", text)
    if m:
        sites.append((m.start(), m.end(), "the the ", "'the the' → 'the': a repeated word."))
    return sites


def proofreading(rng: random.Random) -> list[Pair]:
    passages = _passages()
    for _ in range(20):
        text = rng.choice(passages)
        sites = _error_sites(text)
        if len(sites) >= 2:
            break
    chosen: list[tuple[int, int, str, str]] = []
    for site in rng.sample(sites, len(sites)):
        if len(chosen) == 3:
            break
        if all(site[1] <= c[0] or site[0] >= c[1] for c in chosen):
            chosen.append(site)
    chosen.sort()
    flawed = text
    for start, end, wrong, _ in reversed(chosen):
        flawed = flawed[:start] + wrong + flawed[end:]
    ask = rng.choice(PROOF_ASKS).format(p=rng.choice(PROOF_PURPOSES))
    user = f"{_opener(rng)}{ask}\n\n{flawed}"
    changes = "\n".join(f"- {why}" for *_, why in chosen)
    assistant = (f"{rng.choice(['Here is the corrected text:', 'Corrected version:', 'Here you go, with the fixes applied:'])}"
                 f"\n\n{text}\n\n{rng.choice(['What I changed:', 'Changes:', 'The fixes, in order:'])}\n{changes}"
                 + rng.choice(["\n\nOtherwise it reads clearly, and the explanation is accurate.",
                               "\n\nEverything else looks good to me.",
                               "\n\nThe rest is well written; I wouldn't change anything else.", ""])
                 + _tips(rng, "grammar", p_one=0.3, p_two=0.0))
    return [(user, assistant)]


def explainer_session(rng: random.Random, pool: dict[str, list[dict]]) -> list[Pair]:
    """One or two explainers from the same field, each with its follow-up if it has one."""
    domain = rng.choice(sorted(d for d, items in pool.items() if items))
    pairs: list[Pair] = []
    for k in range(2):
        if not pool[domain] or (k == 1 and rng.random() < 0.65):
            break
        entry = pool[domain].pop(rng.randrange(len(pool[domain])))
        lead = _opener(rng) + rng.choice(EXPLAINER_LEADS) if k == 0 else _follow(rng) + "Another one: "
        extra = "\n\n" + rng.choice(RELATED[domain]) if rng.random() < 0.85 else ""
        question = entry["q"]
        if lead.endswith(": ") and not question.startswith("I"):
            question = question[0].lower() + question[1:]
        pairs.append((lead + question, entry["a"] + extra))
        if entry["f"] and rng.random() < 0.85:
            pairs.append((_follow(rng) + entry["f"][0], entry["f"][1]))
    return pairs


# (session maker, weight, tip domain for follow-up answers or None when the maker adds its own)
PARAMETRIC: list[tuple[Callable[[random.Random], list[Pair]], float, str | None]] = [
    (free_fall, 5, "physics"), (projectile, 4, "physics"), (incline, 4, "physics"),
    (led_resistor, 4, "electronics"), (voltage_divider, 3, "electronics"), (series_parallel, 3, "electronics"),
    (quadratic, 4, "math"), (linear_system, 3, "math"), (derivative, 3, "math"), (sequences, 3, "math"),
    (statistics_summary, 4, "statistics"), (probability, 4, "probability"), (number_bases, 3, "computing"),
    (moles, 4, "chemistry"), (dilution, 3, "chemistry"), (ideal_gas, 3, "chemistry"), (kepler, 3, "astronomy"),
    (spreadsheet_session, 7, None), (data_code_session, 6, None), (grammar_session, 5, None),
    (proofreading, 14, None),
]
EXPLAINER_WEIGHT = 30.0


def _merge_parts(session: list[Pair]) -> list[Pair]:
    """Ask the follow-up as part (b) of the first question, the way homework is often posted."""
    (u0, a0), (u1, a1), *rest = session
    for lead in sorted(FOLLOW_OPENERS, key=len, reverse=True):
        if u1.startswith(lead):
            u1 = u1[len(lead):]
            break
    user = f"{u0}\n\nPart (b): {u1[0].lower()}{u1[1:]}"
    return [(user, f"**Part (a).** {a0}\n\n**Part (b).** {a1}"), *rest]


def build_filler(seed: int = SEED, target_pairs: int = TARGET_PAIRS, target_chars: int = TARGET_CHARS) -> list:
    """Compose the filler: a list of conversations, each a list of ``{"role", "content"}`` messages.

    Sessions are drawn until both the pair and the character targets are met. Every user/assistant pair
    is unique; a session that would repeat an earlier pair is drawn again.
    """
    rng = random.Random(seed)
    pool = {domain: list(items) for domain, items in EXPLAINERS.items()}
    conversations: list[list[dict[str, str]]] = []
    seen: set[Pair] = set()
    pairs = chars = 0
    while pairs < target_pairs or chars < target_chars:
        makers: list[tuple[Callable[[random.Random], list[Pair]], float, str | None]] = []
        if any(pool.values()):
            makers.append((lambda r: explainer_session(r, pool), EXPLAINER_WEIGHT, None))
        makers += PARAMETRIC
        maker, _, domain = rng.choices(makers, weights=[w for _, w, _ in makers])[0]
        session = maker(rng)
        kind = getattr(maker, "__name__", "")
        if kind in BACKGROUND:  # some context for the question and some background for the answer
            (u0, a0), rest = session[0], session[1:]
            session = [(u0 + _context(rng), a0 + _background(rng, kind)), *rest]
        if domain and len(session) > 1 and rng.random() < 0.5:
            session = _merge_parts(session)
        if domain:  # a tutor's follow-up answers sometimes carry an extra tip too
            session = session[:1] + [(u, a + _tips(rng, domain, p_one=0.8, p_two=0.2)) for u, a in session[1:]]
        if not session or any(p in seen for p in session) or len(set(session)) < len(session):
            continue
        seen.update(session)
        messages: list[dict[str, str]] = []
        for user, assistant in session:
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": assistant})
            chars += len(user) + len(assistant)
        pairs += len(session)
        conversations.append(messages)
    return conversations


def render(conversations: list) -> str:
    """Serialize with one message per line, so diffs of the committed file stay readable."""
    lines = ["["]
    for c, conv in enumerate(conversations):
        lines.append(" [")
        for m, msg in enumerate(conv):
            sep = "," if m < len(conv) - 1 else ""
            lines.append("  " + json.dumps(msg, ensure_ascii=False) + sep)
        lines.append(" ]" + ("," if c < len(conversations) - 1 else ""))
    lines.append("]")
    return "\n".join(lines) + "\n"


def stats(conversations: list) -> dict[str, float]:
    pairs = sum(len(c) // 2 for c in conversations)
    chars = sum(len(m["content"]) for c in conversations for m in c)
    return {"conversations": len(conversations), "pairs": pairs, "chars": chars,
            "est_tokens": chars / 4, "est_tokens_per_pair": chars / 4 / pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write filler.json")
    parser.add_argument("--check", action="store_true", help="only verify that --out is up to date")
    args = parser.parse_args(argv)
    conversations = build_filler()
    text = render(conversations)
    info = stats(conversations)
    if args.check:
        ok = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print(("up to date: " if ok else "OUT OF DATE: ") + str(args.out))
        return 0 if ok else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {info['conversations']} conversations, {info['pairs']} pairs, {info['chars']} chars, "
          f"~{info['est_tokens']:.0f} tokens (chars/4), ~{info['est_tokens_per_pair']:.0f} tokens per pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
