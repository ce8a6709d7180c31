// The `ohm` binary against bad input (issue 12, item 4): every case exits with the expected
// status (2 usage error, 1 runtime error, 130 interrupted) and a message naming the flag or
// file at fault, within a deadline (a hang or a runaway fails the test). Runs the real binary
// on the demo model; network cases use loopback only (a closed port, a socket that never
// answers, a one-shot server that answers 401, and `ohm hub serve --port 0`).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

constexpr int kDeadlineS = 90;  // per command; generous for sanitizer builds

std::string ohm_bin() {
  return std::string(OHM_BINARY_DIR) + "/ohm";
}
std::string demo() {
  return (ohm::test::source_dir() / "models" / "ohm-demo").string();
}

struct Result {
  int rc = -1;  // exit status; 128 + signal when killed by one; -2 on timeout
  std::string out, err;
  bool timed_out = false;
};

// Runs `ohm args...` with `input` on stdin; `while_running(pid)` (if set) is called once the
// child started. Kills it after `deadline_s`.
Result run_ohm(const std::vector<std::string>& args, const std::string& input = "",
               int deadline_s = kDeadlineS, const std::function<void(pid_t)>& while_running = {},
               const std::vector<std::string>& env = {}) {
  ohm::test::TempDir tmp;
  const std::string in_path = tmp.file("stdin"), out_path = tmp.file("stdout"),
                    err_path = tmp.file("stderr");
  ohm::test::write_file(in_path, input);
  std::vector<std::string> argv_s = {ohm_bin()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open(in_path.c_str(), O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  Result r;
  if (pid < 0) return r;
  if (while_running) while_running(pid);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(deadline_s);
  int status = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.rc = r.timed_out           ? -2
         : WIFEXITED(status)   ? WEXITSTATUS(status)
         : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                               : -1;
  r.out = ohm::test::read_file(out_path);
  r.err = ohm::test::read_file(err_path);
  return r;
}

// A loopback TCP listener on a free port (closed at scope exit).
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) return;
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() {
    if (fd >= 0) ::close(fd);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

// A loopback port nobody listens on (bound, never listened to, then released).
int closed_port() {
  Listener l;
  const int p = l.port;
  return p;  // the listener closes here: connections are refused
}

struct Case {
  std::string name;
  std::vector<std::string> args;
  int rc;
  std::vector<std::string> fragments;  // each must appear in stderr (or stdout)
  std::string input = "";
};

void check(const Case& c) {
  SCOPED_TRACE(c.name);
  const Result r = run_ohm(c.args, c.input);
  ASSERT_FALSE(r.timed_out) << c.name << ": no exit within " << kDeadlineS << " s";
  EXPECT_EQ(r.rc, c.rc) << c.name << "\nstderr: " << r.err << "\nstdout: " << r.out.substr(0, 500);
  for (const auto& f : c.fragments)
    EXPECT_TRUE(r.err.find(f) != std::string::npos || r.out.find(f) != std::string::npos)
        << c.name << ": '" << f << "' not in\nstderr: " << r.err;
  EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
}

TEST(CliInputs, DraftWithAnotherTokenizer) {
  // Speculative decoding needs the model's tokenizer: GPT-2's is refused before any weights
  // are read (the directory holds only the tokenizer).
  const auto gpt2 = ohm::test::shared_data_dir() / "tokenizers" / "gpt2";
  OHM_REQUIRE_SHARED(std::filesystem::exists(gpt2 / "tokenizer.json"), gpt2);
  check(Case{"--draft with another tokenizer",
             {"generate", demo(), "-p", "x", "--draft", gpt2.string()},
             2,
             {"--draft", "vocabulary has 50257 tokens, the model's 4096"}});
}

// ---- generate / chat / bench / perplexity: flag values -----------------------------------------

TEST(CliInputs, GenerationFlags) {
  const std::string m = demo();
  const std::vector<Case> cases = {
      {"-n 0", {"generate", m, "-p", "ROMEO:", "-n", "0"}, 2, {"--max-new-tokens", "0"}},
      {"-n -5", {"generate", m, "-p", "ROMEO:", "-n", "-5"}, 2, {"--max-new-tokens"}},
      {"-n not a number", {"generate", m, "-p", "x", "-n", "many"}, 2, {"--max-new-tokens"}},
      {"--num-beams 100000",
       {"generate", m, "-p", "x", "--num-beams", "100000"},
       2,
       {"--num-beams", "100000", "1..64"}},
      {"--num-beams 0", {"generate", m, "-p", "x", "--num-beams", "0"}, 2, {"--num-beams"}},
      {"--threads 0", {"generate", m, "-p", "x", "--threads", "0"}, 2, {"--threads", "0"}},
      {"--threads -3", {"generate", m, "-p", "x", "--threads", "-3"}, 2, {"--threads", "-3"}},
      {"--threads 1000", {"generate", m, "-p", "x", "-t", "1000"}, 2, {"--threads", "1000"}},
      {"--top-p 2", {"generate", m, "-p", "x", "--top-p", "2"}, 2, {"--top-p", "2"}},
      {"--top-p 0", {"generate", m, "-p", "x", "--top-p", "0"}, 2, {"--top-p"}},
      {"--top-k -1", {"generate", m, "-p", "x", "--top-k", "-1"}, 2, {"--top-k"}},
      {"--min-p 1.5", {"generate", m, "-p", "x", "--min-p", "1.5"}, 2, {"--min-p"}},
      {"--typical-p 0", {"generate", m, "-p", "x", "--typical-p", "0"}, 2, {"--typical-p"}},
      {"--temperature 0", {"generate", m, "-p", "x", "--temperature", "0"}, 2, {"--temperature"}},
      {"--temperature -1", {"generate", m, "-p", "x", "--temperature", "-1"}, 2, {"--temperature"}},
      {"--temperature nan",
       {"generate", m, "-p", "x", "--temperature", "nan"},
       2,
       {"--temperature"}},
      {"--repetition-penalty 0",
       {"generate", m, "-p", "x", "--repetition-penalty", "0"},
       2,
       {"--repetition-penalty"}},
      {"--greedy with --temperature",
       {"generate", m, "-p", "x", "--greedy", "--temperature", "0.7"},
       2,
       {"--greedy", "--temperature"}},
      {"--greedy with --top-k",
       {"generate", m, "-p", "x", "--greedy", "--top-k", "5"},
       2,
       {"--greedy", "--top-k"}},
      {"--ctx-size 0", {"generate", m, "-p", "x", "--ctx-size", "0"}, 2, {"--ctx-size"}},
      {"--ctx-size past the model",
       {"generate", m, "-p", "x", "-c", "100000"},
       2,
       {"--ctx-size 100000", "512"}},
      {"--prompt and --file",
       {"generate", m, "-p", "x", "-f", "/etc/hostname"},
       2,
       {"--prompt", "--file"}},
      {"no prompt", {"generate", m}, 2, {"--prompt"}},
      {"--dtype bad", {"generate", m, "-p", "x", "--dtype", "f64"}, 2, {"--dtype"}},
      {"--prompt-lookup 0",
       {"generate", m, "-p", "x", "--prompt-lookup", "0"},
       2,
       {"--prompt-lookup"}},
      {"--prompt-lookup and --draft",
       {"generate", m, "-p", "x", "--prompt-lookup", "3", "--draft", m},
       2,
       {"--prompt-lookup", "--draft"}},
      {"--prompt-lookup with beams",
       {"generate", m, "-p", "x", "--prompt-lookup", "3", "--num-beams", "2"},
       2,
       {"--prompt-lookup", "--num-beams"}},
      {"--draft-tokens 0",
       {"generate", m, "-p", "x", "--draft", m, "--draft-tokens", "0"},
       2,
       {"--draft-tokens"}},
      {"chat --threads 0", {"chat", m, "--threads", "0"}, 2, {"--threads"}},
      {"chat --top-p 2", {"chat", m, "--top-p", "2"}, 2, {"--top-p"}},
      {"chat --num-beams 4", {"chat", m, "--num-beams", "4"}, 2, {"--num-beams 4"}},
      {"bench --threads 1000", {"bench", m, "--threads", "1000"}, 2, {"--threads"}},
      {"bench -n 2147483647", {"bench", m, "-n", "2147483647", "-r", "1"}, 2, {"--gen-tokens"}},
      {"bench --gen-tokens past the context",
       {"bench", m, "--gen-tokens", "100000", "-r", "1"},
       2,
       {"--gen-tokens 100000", "context length (512)"}},
      {"bench --prompt-tokens past the context",
       {"bench", m, "--prompt-tokens", "4096", "-r", "1"},
       2,
       {"--prompt-tokens 4096", "512"}},
      {"bench -p is not a bench flag", {"bench", m, "-p", "16"}, 2, {"-p"}},
      {"bench --depth -5", {"bench", m, "--depth", "-5", "-r", "1"}, 2, {"--depth", "-5"}},
      {"bench -d not a number", {"bench", m, "-d", "x"}, 2, {"--depth", "'x'"}},
      {"bench --depth past the context",
       {"bench", m, "--depth", "100000", "-r", "1"},
       2,
       {"--depth 100000", "context length (512)", "--past-context"}},
      {"generate --kv-type q4_0",
       {"generate", m, "-p", "x", "--kv-type", "q4_0"},
       2,
       {"--kv-type", "q4_0", "f32,f16,q8_0"}},
      {"chat --kv-type f64", {"chat", m, "--kv-type", "f64"}, 2, {"--kv-type", "f64"}},
      {"bench --kv-type bf16", {"bench", m, "--kv-type", "bf16"}, 2, {"--kv-type", "bf16"}},
      {"perplexity --threads -3", {"perplexity", m, "--text", "x", "-t", "-3"}, 2, {"--threads"}},
      {"perplexity --ctx-size past the model",
       {"perplexity", m, "--text", "x y z", "--ctx-size", "4096"},
       2,
       {"--ctx-size 4096", "512"}},
      {"perplexity --ctx 2", {"perplexity", m, "--text", "x", "--ctx", "2"}, 2, {"--ctx"}},
      {"perplexity text shorter than a chunk",
       {"perplexity", m, "--text", "ROMEO: hello", "-c", "64"},
       2,
       {"--ctx-size 64", "shorter than one chunk"}},
  };
  for (const auto& c : cases) check(c);
}

// ---- contexts, prompts and files -------------------------------------------------------------

TEST(CliInputs, PromptsAndContext) {
  const std::string m = demo();
  ohm::test::TempDir d;
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "ROMEO: good night, good night. ";
  ohm::test::write_file(d.file("long.txt"), long_text);
  ohm::test::write_file(d.file("prompt.txt"), "JULIET:");
  fs::create_directory(d.path() / "adir");
  const std::vector<Case> cases = {
      {"prompt longer than the model's context",
       {"generate", m, "-f", d.file("long.txt")},
       2,
       {"the prompt is", "context holds 512", "--ctx-size"}},
      {"prompt longer than --ctx-size",
       {"generate", m, "-p", "ROMEO: good night, good night, parting is such", "-c", "4"},
       2,
       {"context holds 4", "--ctx-size"}},
      {"-n 2147483647 is cut to the context",
       {"generate", m, "-p", "ROMEO:", "-n", "2147483647", "-c", "24", "--greedy"},
       0,
       {"--max-new-tokens 2147483647 does not fit the context", "ROMEO:"}},
      {"-f missing", {"generate", m, "-f", d.file("nope.txt")}, 2, {"--file", "nope.txt"}},
      {"-f directory", {"generate", m, "-f", d.file("adir")}, 2, {"--file", "is a directory"}},
      {"tokenize --file DIR",
       {"tokenize", m, "--file", d.file("adir")},
       2,
       {"--file", "adir", "is a directory"}},
      {"tokenize --file missing",
       {"tokenize", m, "--file", d.file("nope")},
       2,
       {"--file", "no such file"}},
      {"tokenize nothing", {"tokenize", m}, 2, {"--text", "--file"}},
      {"detokenize out-of-range id",
       {"detokenize", m, "--ids", "1 99999"},
       2,
       {"--ids", "99999", "4096"}},
      {"detokenize negative id", {"detokenize", m, "--json", "[-1]"}, 2, {"--json", "-1"}},
      {"detokenize huge id",
       {"detokenize", m, "--ids", "99999999999999"},
       2,
       {"--ids", "99999999999999"}},
      {"perplexity --file DIR",
       {"perplexity", m, "--file", d.file("adir")},
       2,
       {"--file", "is a directory"}},
      // Conveniences: the prompt from a file or stdin.
      {"generate -f FILE",
       {"generate", m, "-f", d.file("prompt.txt"), "-n", "3", "--greedy"},
       0,
       {"JULIET:"}},
      {"generate -p - (stdin)",
       {"generate", m, "-p", "-", "-n", "3", "--greedy"},
       0,
       {"KING HENRY"},
       "KING HENRY"},
  };
  for (const auto& c : cases) check(c);
}

TEST(CliInputs, BareSafetensorsWithoutTokenizer) {
  ohm::test::TempDir d;
  fs::create_symlink(fs::path(demo()) / "model.safetensors", d.path() / "model.safetensors");
  check({"bare .safetensors",
         {"generate", d.file("model.safetensors"), "-p", "x"},
         2,
         {"no tokenizer found next to", "model.safetensors", "--tokenizer"}});
}

TEST(CliInputs, SubcommandsAndHelp) {
  check({"ohm foo", {"foo"}, 2, {"unknown subcommand 'foo'", "generate", "pull", "tokenize"}});
  check({"ohm (nothing)", {}, 2, {"subcommand is required", "generate"}});
  check({"unknown flag", {"generate", demo(), "-p", "x", "--frobnicate"}, 2, {"--frobnicate"}});
  // Help texts carry only their own notes.
  Result r = run_ohm({"pull", "--help"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out.find("MODEL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rerun to resume"), std::string::npos) << r.out;
  r = run_ohm({"generate", "--help"});
  EXPECT_EQ(r.rc, 0);
  for (const char* flag : {"--ctx-size", "--file", "--quiet", "--seed", "--tokenizer"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  EXPECT_EQ(r.out.find("HF_ENDPOINT"), std::string::npos) << r.out;
  r = run_ohm({"bench", "--help"});
  EXPECT_EQ(r.out.find("-p,"), std::string::npos) << r.out;  // -p is generate's prompt only
}

// ---- threads that cannot be created ------------------------------------------------------------

TEST(CliInputs, ThreadCreationFailureIsAnError) {
  // A 4 TiB stack size limit: glibc gives every new thread a stack that size, which the kernel
  // refuses (more than memory + swap), so the pool cannot start its threads (also under ASan).
  const std::string cmd = "ulimit -s 4294967296 && exec '" + ohm_bin() + "' generate '" + demo() +
                          "' -p x -n 2 --greedy -t 8";
  ohm::test::TempDir d;
  const std::string err = d.file("err");
  const int status = std::system(("timeout -s KILL 60 sh -c \"" + cmd + "\" 2>" + err).c_str());
  const std::string e = ohm::test::read_file(err);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  if (WEXITSTATUS(status) == 0) GTEST_SKIP() << "this system lets such threads start";
  EXPECT_EQ(WEXITSTATUS(status), 1) << e;  // not 137: no hang until the timeout
  EXPECT_NE(e.find("cannot start a pool of 8 threads"), std::string::npos) << e;
  EXPECT_NE(e.find("--threads"), std::string::npos) << e;
}

// ---- seeds and --json
// ----------------------------------------------------------------------------

TEST(CliInputs, SeedIsRandomForSamplingAndReported) {
  const std::string m = demo();
  auto gen = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"generate", m, "-p", "ROMEO:", "-n", "6", "--json", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    const Result r = run_ohm(a);
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.err, "");  // --quiet
    return nlohmann::json::parse(r.out);
  };
  const auto a = gen({"--top-k", "50"}), b = gen({"--top-k", "50"});
  ASSERT_TRUE(a["seed"].is_number_unsigned()) << a;
  EXPECT_NE(a["seed"], b["seed"]);
  const auto c = gen({"--top-k", "50", "--seed", a["seed"].dump()});
  EXPECT_EQ(c["seed"], a["seed"]);
  EXPECT_EQ(c["tokens"], a["tokens"]);  // the printed seed reproduces the run
  EXPECT_TRUE(gen({"--greedy"})["seed"].is_null());
}

// ---- pull / push ------------------------------------------------------------------------------

TEST(CliInputs, NetworkErrorsSayWhy) {
  const int port = closed_port();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  ohm::test::TempDir d;
  check({"pull from a closed port",
         {"pull", "a/b", "--endpoint", url, "--cache-dir", d.file("cache")},
         1,
         {"cannot connect to " + url + " (Connection refused)"}});
  fs::create_directory(d.path() / "up");
  ohm::test::write_file(d.file("up/config.json"), "{}");
  check({"push to a closed port",
         {"push", d.file("up"), "a/b", "--endpoint", url, "--token", "hf_x"},
         1,
         {"cannot connect to " + url + " (Connection refused)"}});
  check({"push of a missing folder",
         {"push", d.file("nope"), "a/b", "--token", "hf_x"},
         2,
         {"nope", "no such directory"}});
  check({"pull --parallel 0", {"pull", "a/b", "--parallel", "0"}, 2, {"--parallel"}});
}

TEST(CliInputs, Http401IsAnAuthenticationError) {
  Listener l;
  ASSERT_GT(l.port, 0);
  std::thread server([&] {
    // Answers every connection with 401 until none comes for 2 s (bounded: 20 connections).
    for (int i = 0; i < 20; ++i) {
      pollfd p{l.fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      const int c = ::accept(l.fd, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      for (int k = 0; k < 100 && req.find("\r\n\r\n") == std::string::npos; ++k) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 2000) <= 0) break;
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      const std::string body = R"({"error":"Invalid credentials in Authorization header"})";
      const std::string resp =
          "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      (void)!::write(c, resp.data(), resp.size());
      ::close(c);
    }
  });
  ohm::test::TempDir d;
  check({"pull answered 401",
         {"pull", "a/b", "--endpoint", l.url(), "--cache-dir", d.file("c"), "--token", "hf_bad"},
         1,
         {"authentication error", "401 Unauthorized: invalid or missing token for " + l.url()}});
  check({"login answered 401",
         {"login", "--token", "hf_bad", "--endpoint", l.url()},
         1,
         {"invalid token", "401"}});
  server.join();
}

// Waits for the command to connect to the listener (its signal handler is installed by then),
// then sends it Ctrl-C.
std::function<void(pid_t)> interrupt_once_connected(const Listener& l) {
  return [&l](pid_t pid) {
    pollfd p{l.fd, POLLIN, 0};
    ::poll(&p, 1, 60000);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::kill(pid, SIGINT);
  };
}

TEST(CliInputs, CtrlCDuringPullKeepsThePartialDownload) {
  // The endpoint accepts the connection and never answers: the pull waits until interrupted.
  Listener l;
  ASSERT_GT(l.port, 0);
  ohm::test::TempDir d;
  const Result r = run_ohm({"pull", "a/b", "--endpoint", l.url(), "--cache-dir", d.file("c")}, "",
                           kDeadlineS, interrupt_once_connected(l));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.rc, 130) << r.err;
  EXPECT_NE(r.err.find("interrupted; partial downloads are kept"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rerun"), std::string::npos) << r.err;
}

TEST(CliInputs, CtrlCDuringPushSaysWhatWasKept) {
  // The endpoint accepts the connection and never answers: the push waits until interrupted.
  Listener l;
  ASSERT_GT(l.port, 0);
  ohm::test::TempDir d;
  const std::string folder = d.file("f");
  std::filesystem::create_directories(folder);
  { std::ofstream(folder + "/config.json") << "{}"; }
  const Result r = run_ohm({"push", folder, "a/b", "--endpoint", l.url(), "--token", "hf_x"}, "",
                           kDeadlineS, interrupt_once_connected(l));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.rc, 130) << r.err;
  EXPECT_NE(r.err.find("ohm push: interrupted; nothing is committed"), std::string::npos) << r.err;
}

// Sends Ctrl-C once the command has written `text` to its stdout (a file: see run_ohm).
std::function<void(pid_t)> interrupt_once_printed(const std::string& text) {
  return [text](pid_t pid) {
    const std::string fd1 = "/proc/" + std::to_string(pid) + "/fd/1";
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < end) {
      std::error_code ec;
      // Only once the child has redirected its stdout to run_ohm's file.
      if (fs::read_symlink(fd1, ec).filename() == "stdout" &&
          ohm::test::read_file(fd1).find(text) != std::string::npos)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(pid, SIGINT);
  };
}

TEST(CliInputs, CtrlCDuringGenerateStopsTheDecodeLoop) {
  // The prompt is echoed once the handler is installed; 510 tokens on one thread take long
  // enough for the signal to land mid-generation (a run that finished first is retried).
  Result r;
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = run_ohm({"generate", demo(), "--prompt", "ROMEO:", "-n", "510", "--seed", "1", "-t", "1"},
                "", kDeadlineS, interrupt_once_printed("ROMEO:"));
    if (r.rc != 0) break;
  }
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.rc, 130) << r.err;
  EXPECT_NE(r.err.find(", cancelled, seed 1"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.starts_with("ROMEO:")) << r.out;
  EXPECT_TRUE(r.out.ends_with("\n")) << r.out;
}

TEST(CliInputs, CtrlCDuringAChatReplyEndsTheTurnOnly) {
  // Ctrl-C at the first turn stops its reply; the chat goes on to the second turn and /exit.
  Result r;
  auto turn_tokens = [&r](size_t turn) {
    size_t at = 0;
    for (size_t i = 0; i <= turn; ++i) {
      at = r.err.find("ohm: ", at);
      if (at == std::string::npos) return -1;
      at += 5;
    }
    return std::atoi(r.err.c_str() + at);
  };
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = run_ohm({"chat", demo(), "-n", "400", "--seed", "1", "-t", "1", "--no-history"},
                "Good morrow.\nWhat news?\n/exit\n", kDeadlineS, interrupt_once_printed("> "));
    if (turn_tokens(1) != 400) break;  // else the reply ended before the signal: again
  }
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_LT(turn_tokens(1), 400) << r.err;  // [0] is the "loaded" line
  EXPECT_GT(turn_tokens(2), 0) << "a second turn: " << r.err;
}

// Starts `ohm hub serve --port 0` on a fresh data directory; stops it at scope exit.
struct Hub {
  pid_t pid = -1;
  std::string url;
  explicit Hub(const std::string& data) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid = ::fork();
    if (pid == 0) {
      ::dup2(fds[1], 1);
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 2);
      ::close(fds[0]);
      ::execl(ohm_bin().c_str(), "ohm", "hub", "serve", "--data", data.c_str(), "--port", "0",
              "--quiet", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    std::string line;
    char buf[256];
    for (int i = 0; i < 300 && line.find('\n') == std::string::npos; ++i) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    const size_t at = line.find("http://");
    if (at != std::string::npos) url = line.substr(at, line.find_first_of(" \n", at) - at);
  }
  ~Hub() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

TEST(CliInputs, PushOfAnHfCacheSnapshotFollowsSymlinks) {
  ohm::test::TempDir d;
  const std::string data = d.file("hub");
  ASSERT_EQ(run_ohm({"hub", "user", "add", "alice", "--data", data}).rc, 0);
  const Result t =
      run_ohm({"hub", "token", "create", "--data", data, "--user", "alice", "--scope", "write"});
  ASSERT_EQ(t.rc, 0) << t.err;
  std::string token = t.out.substr(t.out.find("hf_"));
  token = token.substr(0, token.find_first_of(" \n"));
  Hub hub(data);
  ASSERT_FALSE(hub.url.empty()) << "ohm hub serve did not start";

  // An HF cache snapshot as `ohm pull` (and huggingface_hub) writes it: symlinks into blobs/.
  fs::create_directories(d.path() / "src" / "sub");
  ohm::test::write_file(d.file("src/config.json"), R"({"model_type": "llama"})");
  ohm::test::write_file(d.file("src/sub/notes.txt"), "hello\n");
  Result r =
      run_ohm({"push", d.file("src"), "alice/orig", "--endpoint", hub.url, "--token", token});
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run_ohm({"pull", "alice/orig", "--endpoint", hub.url, "--token", token, "--cache-dir",
               d.file("cache"), "-q"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string snap = r.out.substr(0, r.out.find('\n'));
  ASSERT_TRUE(fs::is_symlink(fs::path(snap) / "config.json")) << snap;

  r = run_ohm({"push", snap, "alice/copy", "--endpoint", hub.url, "--token", token});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("2 regular"), std::string::npos) << r.err;
  r = run_ohm({"pull", "alice/copy", "--endpoint", hub.url, "--token", token, "--cache-dir",
               d.file("cache2"), "-q"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string snap2 = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(ohm::test::read_file(snap2 + "/config.json"), R"({"model_type": "llama"})");
  EXPECT_EQ(ohm::test::read_file(snap2 + "/sub/notes.txt"), "hello\n");
}

}  // namespace
