# AURA's exemplar methods: small, correct functions that genesis installs in memory
# so that a learn cycle can show the model how a good answer looks. Written by the
# AURA team for this purpose; none comes from HumanEval or the everyday suite.
#
# Format: blocks separated by two blank lines. Each block is a comment line saying
# what the function does, the function, then asserts that call it. The file is valid
# Python: `python3 aura-core/data/exemplars.py` runs every assert.


# Convert a distance in kilometers to meters.
def kilometers_to_meters(kilometers):
    return kilometers * 1000

assert kilometers_to_meters(3) == 3000
assert kilometers_to_meters(0.5) == 500


# Split a sentence into words and give the length of each word.
def word_lengths(sentence):
    return [len(word) for word in sentence.split()]

assert word_lengths("hi there") == [2, 5]
assert word_lengths("") == []


# Check whether a number is divisible by another number.
def is_divisible(number, divisor):
    return divisor != 0 and number % divisor == 0

assert is_divisible(12, 4) == True
assert is_divisible(7, 2) == False


# Get the first word of a text.
def first_word(text):
    words = text.split()
    if not words:
        return ""
    return words[0]

assert first_word("good day to you") == "good"
assert first_word("") == ""


# Count how many numbers in a list are greater than zero.
def count_positive(numbers):
    count = 0
    for number in numbers:
        if number > 0:
            count += 1
    return count

assert count_positive([3, -1, 0, 8]) == 2
assert count_positive([]) == 0


# Join a list of words into one sentence with spaces between them.
def join_words(words):
    return " ".join(words)

assert join_words(["see", "you", "soon"]) == "see you soon"
assert join_words([]) == ""


# Keep a value between a lower and an upper limit.
def clamp(value, low, high):
    return max(low, min(value, high))

assert clamp(15, 0, 10) == 10
assert clamp(-3, 0, 10) == 0
assert clamp(4, 0, 10) == 4


# Compute the perimeter of a rectangle from its width and height.
def rectangle_perimeter(width, height):
    return 2 * (width + height)

assert rectangle_perimeter(3, 4) == 14
assert rectangle_perimeter(1, 1) == 4


# Compute the running total of a list of numbers.
def running_total(numbers):
    totals = []
    total = 0
    for number in numbers:
        total += number
        totals.append(total)
    return totals

assert running_total([1, 2, 3]) == [1, 3, 6]
assert running_total([]) == []


# Find the position of an item in a list, or -1 when it is not there.
def index_of(items, item):
    for position, value in enumerate(items):
        if value == item:
            return position
    return -1

assert index_of(["a", "b", "c"], "c") == 2
assert index_of([1, 2], 5) == -1


# Repeat a text a number of times.
def repeat_text(text, times):
    return text * times

assert repeat_text("ab", 3) == "ababab"
assert repeat_text("x", 0) == ""


# Keep only the even numbers of a list.
def keep_even(numbers):
    return [number for number in numbers if number % 2 == 0]

assert keep_even([1, 2, 3, 4]) == [2, 4]
assert keep_even([5, 7]) == []


# Compute what percentage a part is of a whole.
def percentage(part, whole):
    if whole == 0:
        return 0.0
    return part / whole * 100

assert percentage(1, 4) == 25.0
assert percentage(3, 0) == 0.0


# Check whether a number lies between two limits, the limits included.
def is_between(number, low, high):
    return low <= number <= high

assert is_between(5, 1, 10) == True
assert is_between(11, 1, 10) == False


# Raise a number to a power.
def power(base, exponent):
    return base ** exponent

assert power(2, 10) == 1024
assert power(5, 0) == 1


# Compute the distance between two points from their coordinates.
import math

def distance(x1, y1, x2, y2):
    return math.hypot(x2 - x1, y2 - y1)

assert distance(0, 0, 3, 4) == 5.0
assert distance(1, 1, 1, 1) == 0.0


# Take the first characters of a text, at most a given number of them.
def first_characters(text, count):
    return text[:count]

assert first_characters("sunshine", 3) == "sun"
assert first_characters("hi", 5) == "hi"


# List the distinct words of a sentence in alphabetical order, ignoring case.
def distinct_words(sentence):
    return sorted(set(sentence.lower().split()))

assert distinct_words("the cat saw The dog") == ["cat", "dog", "saw", "the"]
assert distinct_words("") == []


# Flatten a list of lists into one list.
def flatten(lists):
    return [item for inner in lists for item in inner]

assert flatten([[1, 2], [3], []]) == [1, 2, 3]
assert flatten([]) == []


# Add two lists of numbers element by element.
def pairwise_sums(first, second):
    return [a + b for a, b in zip(first, second)]

assert pairwise_sums([1, 2], [10, 20]) == [11, 22]
assert pairwise_sums([], []) == []


# Compute the total price of a quantity of items at a unit price.
def total_price(quantity, unit_price):
    return quantity * unit_price

assert total_price(3, 2.5) == 7.5
assert total_price(0, 9) == 0


# Count the lines in a text.
def count_lines(text):
    if text == "":
        return 0
    return len(text.split("\n"))

assert count_lines("one\ntwo\nthree") == 3
assert count_lines("") == 0


# Check whether every number in a list is greater than a limit.
def all_above(numbers, limit):
    for number in numbers:
        if number <= limit:
            return False
    return True

assert all_above([5, 8, 9], 4) == True
assert all_above([5, 2], 4) == False


# Compute the number of whole weeks in a number of days.
def whole_weeks(days):
    return days // 7

assert whole_weeks(15) == 2
assert whole_weeks(6) == 0
