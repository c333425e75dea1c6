"""real10k: 10k notes cut from CPython's stdlib source (a realistic vocabulary); every 20th note
gets a CJK sentence and an accented phrase. python3 make_real_corpus.py /tmp/fts/real10k"""
import glob, math, os, random, sys
rng = random.Random(7)
src = []
for f in sorted(glob.glob(os.path.dirname(os.__file__) + '/**/*.py', recursive=True))[:3000]:
    try: src.append(open(f, encoding='utf-8').read())
    except Exception: pass
text = "\n".join(src); N = len(text)
out = sys.argv[1]; os.makedirs(out, exist_ok=True); total = 0
accents = ["Café au lait", "naïve façade", "Zürich Müller", "São Paulo", "crème brûlée"]
cjk = ["東京都の同期エンジン", "全文検索インデックス", "知识库同步引擎", "한국어 검색 색인"]
for i in range(10000):
    size = int(math.exp(rng.uniform(math.log(512), math.log(8192))))
    start = rng.randrange(0, N - size); body = text[start:start + size]
    if i % 20 == 0:
        body = rng.choice(cjk) + "。" + body + "\n" + rng.choice(accents)
    folder = f"{out}/f{i // 150}"; os.makedirs(folder, exist_ok=True)
    tags = rng.sample(["python", "stdlib", "code", "notes", "ref", "draft", "ideas", "work"], 2)
    def snip():
        p = rng.randrange(N - 80); return text[p:p + 60].replace("\n", " ")
    obs = "\n".join(f"- [fact] {snip()} #tag{rng.randrange(50)}" for _ in range(rng.randint(1, 5)))
    first = body.strip().split("\n")[0][:40]
    for ch in ":'\"#": first = first.replace(ch, " ")
    data = (f"---\ntitle: Note {i} {first}\ntype: note\ntags: [{', '.join(tags)}]\n---\n\n"
            f"# Note {i}\n\n{body}\n\n## Observations\n{obs}\n").encode()
    total += len(data); open(f"{folder}/note {i}.md", "wb").write(data)
print("bytes", total)
