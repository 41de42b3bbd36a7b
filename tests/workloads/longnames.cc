// A C++ workload whose hot function has the kind of name that overflows a
// terminal: nested namespaces, templates and a long parameter list.
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace very_long_company_namespace {
namespace detail_implementation_details {

template <typename Key, typename Value>
struct RequestProcessingPipelineStage {
    __attribute__((noinline)) unsigned long
    process_every_element_of_the_request(const std::vector<std::map<std::string, Key>>& requests,
                                         const std::map<std::string, std::vector<Value>>& table,
                                         unsigned long rounds) {
        volatile unsigned long x = requests.size() + table.size();
        for (unsigned long i = 0; i < rounds; i++) x = x * 6364136223846793005UL + 1UL;
        return x;
    }
};

}  // namespace detail_implementation_details
}  // namespace very_long_company_namespace

int main(int argc, char** argv) {
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    very_long_company_namespace::detail_implementation_details::RequestProcessingPipelineStage<int, double> stage;
    std::vector<std::map<std::string, int>> requests(3);
    std::map<std::string, std::vector<double>> table;
    unsigned long rounds = (unsigned long)(secs * 4e8);
    unsigned long sum = 0;
    for (unsigned long done = 0; done < rounds; done += 1000000)
        sum += stage.process_every_element_of_the_request(requests, table, 1000000);
    return sum == 42 ? 1 : 0;
}
